"""The pure core: contracts (items, events, object names, settings), errors, logs and the rules (splits,
metrics, promotion). No I/O, no Google Cloud, no scikit-learn: everything above builds on it."""
