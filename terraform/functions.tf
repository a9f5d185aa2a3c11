# The six functions. Each runs as its own service account. The event-driven ones are reached through
# explicit Pub/Sub push subscriptions (pubsub.tf) rather than `event_trigger`: an event_trigger cannot set
# a dead-letter policy (terraform-provider-google #25069), and the push path is the same raw push the local
# stack uses, which functions-framework turns into CloudEvents.

locals {
  functions = {
    # Pub/Sub push from the same project counts as internal traffic, so only predict_http takes outside calls.
    predict      = { entry_point = "predict", kind = "cloudevent", ingress = "ALLOW_INTERNAL_ONLY" }
    predict_http = { entry_point = "predict_http", kind = "http", ingress = "ALLOW_ALL" }
    feedback     = { entry_point = "feedback", kind = "cloudevent", ingress = "ALLOW_INTERNAL_ONLY" }
    retrain      = { entry_point = "retrain", kind = "cloudevent", ingress = "ALLOW_INTERNAL_ONLY" }
    promote      = { entry_point = "promote", kind = "cloudevent", ingress = "ALLOW_INTERNAL_ONLY" }
    batch        = { entry_point = "batch", kind = "cloudevent", ingress = "ALLOW_INTERNAL_ONLY" }
  }

  # Exactly the variables saikika.core.settings.Settings reads (the HCL tests compare them).
  settings_env = merge(var.settings, {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    SAIKIKA_DATA_BUCKET        = google_storage_bucket.data.name
    SAIKIKA_MODELS_BUCKET      = google_storage_bucket.models.name
    SAIKIKA_PREDICTIONS_BUCKET = google_storage_bucket.predictions.name
    # Batch jobs: where the Flex Template is and what its workers run as (dataflow.tf).
    SAIKIKA_BATCH_LAUNCHER           = "dataflow"
    SAIKIKA_DATAFLOW_REGION          = var.region
    SAIKIKA_DATAFLOW_TEMPLATE        = local.dataflow_template
    SAIKIKA_DATAFLOW_SERVICE_ACCOUNT = google_service_account.dataflow_worker.email
    SAIKIKA_DATAFLOW_TEMP_LOCATION   = "gs://${google_storage_bucket.dataflow.name}/temp"
    SAIKIKA_DATAFLOW_MAX_WORKERS     = tostring(var.dataflow_max_workers)
    SAIKIKA_DATAFLOW_MACHINE_TYPE    = var.dataflow_machine_type
    SAIKIKA_DATAFLOW_IMAGE           = local.dataflow_image
    SAIKIKA_RESCORE_INPUT            = var.rescore_on_promotion ? "gs://${google_storage_bucket.data.name}/catalogue/*.jsonl" : ""
    # Training that outgrows the function (training_job.tf).
    SAIKIKA_TRAINING_LAUNCHER      = "cloudrun"
    SAIKIKA_TRAINING_JOB           = local.training_job_id
    SAIKIKA_TRAINING_JOB_TIMEOUT_S = tostring(var.training_job_timeout_s)
    # predict_http's request-response log (docs/api.md).
    SAIKIKA_HTTP_LOG_SAMPLING = tostring(var.http_log_sampling)
  })
}

resource "google_cloudfunctions2_function" "fn" {
  # checkov:skip=CKV_GCP_124:Only predict_http allows outside ingress (it is the online API); every call needs an identity token of a member granted roles/run.invoker.
  for_each = local.functions

  name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  location    = var.region
  description = "saikika ${each.key}"

  build_config {
    runtime     = var.python_runtime
    entry_point = each.value.entry_point
    # Builds run as an account of their own (iam.tf), not the project's default compute account.
    service_account = google_service_account.builder.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = var.function_resources[each.key].memory
    available_cpu                    = var.function_resources[each.key].cpu
    min_instance_count               = var.function_resources[each.key].min_instances
    max_instance_count               = var.function_resources[each.key].max_instances
    max_instance_request_concurrency = var.function_resources[each.key].concurrency
    timeout_seconds                  = var.function_resources[each.key].timeout_seconds
    service_account_email            = google_service_account.fn[each.key].email
    all_traffic_on_latest_revision   = true
    # Every call must carry an identity token of a member granted roles/run.invoker (iam.tf): nothing is public.
    ingress_settings = each.value.ingress
    # functions-framework runs gunicorn with WORKERS processes (default 1): one per CPU, since scoring is
    # CPU-bound Python and threads of one process share a GIL.
    environment_variables = merge(local.settings_env, {
      WORKERS = tostring(max(1, floor(tonumber(var.function_resources[each.key].cpu))))
    })
  }

  depends_on = [google_project_service.apis]
}
