"""One module per Cloud Function: what `functions/<name>/main.py` hands its decoded event to."""
