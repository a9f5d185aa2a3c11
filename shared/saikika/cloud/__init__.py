"""Google Cloud adapters: the only modules that import `google.cloud` or `google.api_core` (object
helpers, the model registry, the champion cache, the lease, training data and rejected-record stores)."""
