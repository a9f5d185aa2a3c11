"""The model: training, the inference artifact and its scorer, evaluation, validation, reports and the
synthetic catalogue. No Google Cloud. The serving path imports only `label_model`, `artifact` and
`inference_artifact`, which need numpy alone."""
