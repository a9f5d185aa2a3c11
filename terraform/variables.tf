variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler job and regional resources."
  type        = string
  default     = "asia-northeast1"
}

variable "bucket_location" {
  description = "Location of the three buckets and the sources bucket (a region, dual-region or multi-region)."
  type        = string
  default     = "ASIA-NORTHEAST1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; bucket names also carry the project id to be globally unique."
  type        = string
  default     = "saikika"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}$", var.name_prefix))
    error_message = "name_prefix: 2-14 characters, lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "packages_dir" {
  description = "Folder with the function zips built by `make package` (build/functions/<name>.zip)."
  type        = string
  default     = "../build/functions"
}

variable "python_runtime" {
  description = "Cloud Functions runtime: the Python that functions/*/requirements.txt were resolved for (see their header)."
  type        = string
  default     = "python311"

  validation {
    condition     = var.python_runtime == "python311"
    error_message = "The function locks are resolved for Python 3.11: re-lock with `make lock` under another Python before deploying another runtime."
  }
}

variable "predictions_retention_days" {
  description = "Days after which objects under predictions/ are deleted."
  type        = number
  default     = 90
}

variable "rejected_retention_days" {
  description = "Days after which objects under rejected/ are deleted."
  type        = number
  default     = 30
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message goes to its subscription's dead-letter topic (Pub/Sub allows 5-100)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retrain_max_delivery_attempts" {
  description = "Deliveries for the retrain subscriptions (deferral is acknowledged, not failed: failures are real)."
  type        = number
  default     = 5

  validation {
    condition     = var.retrain_max_delivery_attempts >= 5 && var.retrain_max_delivery_attempts <= 100
    error_message = "retrain_max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Pub/Sub retry backoff, lower bound."
  type        = string
  default     = "10s"
}

variable "retry_maximum_backoff" {
  description = "Pub/Sub retry backoff, upper bound (at most 600s)."
  type        = string
  default     = "600s"
}

variable "function_resources" {
  description = "Per function: memory, CPU, instances and concurrency."
  type = map(object({
    memory          = string
    cpu             = string
    min_instances   = number
    max_instances   = number
    concurrency     = number
    timeout_seconds = number
  }))
  default = {
    predict      = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 20, concurrency = 8, timeout_seconds = 120 }
    predict_http = { memory = "1Gi", cpu = "1", min_instances = 1, max_instances = 20, concurrency = 8, timeout_seconds = 60 }
    feedback     = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 8, timeout_seconds = 60 }
    retrain      = { memory = "4Gi", cpu = "2", min_instances = 0, max_instances = 2, concurrency = 1, timeout_seconds = 540 }
    promote      = { memory = "2Gi", cpu = "1", min_instances = 0, max_instances = 2, concurrency = 1, timeout_seconds = 540 }
    batch        = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 1, timeout_seconds = 540 }
  }

  validation {
    condition     = length(setsubtract(["predict", "predict_http", "feedback", "retrain", "promote", "batch"], keys(var.function_resources))) == 0
    error_message = "function_resources needs an entry for each of predict, predict_http, feedback, retrain, promote, batch."
  }
}

variable "http_invokers" {
  description = "Members allowed to call predict_http, e.g. serviceAccount:caller@project.iam.gserviceaccount.com. Never public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.http_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "predict_http is authenticated: allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "feedback_publishers" {
  description = "The only members granted publishing on the feedback topic (confirmed labels become training data). Grant no project-wide Pub/Sub publisher role besides."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.feedback_publishers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "Publishing feedback is never public."
  }
}

variable "retrain_schedule" {
  description = "Cron schedule of the periodic retrain request (Cloud Scheduler)."
  type        = string
  default     = "0 3 * * *"
}

variable "retrain_tick_schedule" {
  description = "Cron schedule of the retrain tick that trains settled pending work."
  type        = string
  default     = "* * * * *"
}

variable "retrain_schedule_forces" {
  description = "Whether the periodic retrain (retrain_schedule) trains even on unchanged data."
  type        = bool
  default     = false
}

variable "retrain_time_zone" {
  description = "Time zone of retrain_schedule."
  type        = string
  default     = "Asia/Tokyo"
}

variable "settings" {
  description = "Optional SAIKIKA_* settings passed to every function (see README, Configuration)."
  type        = map(string)
  default = {
    SAIKIKA_MODEL_TTL_S            = "60"
    SAIKIKA_RETRAIN_MIN_INTERVAL_S = "300"
    SAIKIKA_RETRAIN_SETTLE_S       = "30"
    SAIKIKA_PROMOTION_TOLERANCE    = "0.0"
  }

  validation {
    condition     = alltrue([for k in keys(var.settings) : startswith(k, "SAIKIKA_")])
    error_message = "settings keys must start with SAIKIKA_."
  }
}

variable "noncurrent_retention_days" {
  description = "How long the versioned data and models buckets keep an overwritten or deleted object's old version."
  type        = number
  default     = 30
}

variable "dataflow_max_workers" {
  description = "Upper bound of Dataflow workers per batch job."
  type        = number
  default     = 10
}

variable "dataflow_machine_type" {
  description = "Machine type of Dataflow batch workers."
  type        = string
  default     = "n2-standard-2"
}

variable "dataflow_template_object" {
  description = "Object in the dataflow bucket that `gcloud dataflow flex-template build` writes (README, Deploy)."
  type        = string
  default     = "templates/saikika-batch.json"
}

variable "rescore_on_promotion" {
  description = "After each promotion, predict the catalogue (catalogue/*.jsonl in the data bucket) with the new champion on Dataflow."
  type        = bool
  default     = false
}

variable "bigquery_dataset" {
  description = "BigQuery dataset of the external tables over predictions and batch output."
  type        = string
  default     = "saikika"
}

variable "bigquery_location" {
  description = "BigQuery dataset location; must hold the buckets' location (bucket_location)."
  type        = string
  default     = "asia-northeast1"
}

variable "latest_predictions_days" {
  description = "How many days of partitions the latest_predictions view looks back over."
  type        = number
  default     = 90
}

variable "dataflow_image_tag" {
  description = "Tag of the batch Flex Template image to run (README, Deploy)."
  type        = string
  default     = "latest"
}

variable "training_image_tag" {
  description = "Tag of the training job image (training_job/Dockerfile; README, Deploy)."
  type        = string
  default     = "latest"
}

variable "training_job_timeout_s" {
  description = "How long a training job execution may run; the loop treats a job past it as failed."
  type        = number
  default     = 14400
}

variable "training_job_cpu" {
  description = "CPUs of the training job."
  type        = string
  default     = "4"
}

variable "training_job_memory" {
  description = "Memory of the training job (streaming training keeps 1M rows under 2 GiB; bench/scale.json)."
  type        = string
  default     = "8Gi"
}

variable "http_log_sampling" {
  description = "The share of predict_http requests whose predictions are logged under predictions/ in the predictions bucket (docs/api.md)."
  type        = number
  default     = 1.0

  validation {
    condition     = var.http_log_sampling >= 0 && var.http_log_sampling <= 1
    error_message = "http_log_sampling must be between 0 and 1."
  }
}

variable "alert_emails" {
  description = "E-mail addresses told of every alert (docs/monitoring.md, \"Alerts and dashboard\"); none: the alerts are still created and show in the console."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "alert_emails: each entry must be an e-mail address."
  }
}

variable "alert_notification_period" {
  description = "At most one notification per this period for each log-match alert (a burst of matching entries is one notification)."
  type        = string
  default     = "3600s"
}

variable "served_quality_days" {
  description = "How many days of feedback and prediction partitions the served_quality view looks back over."
  type        = number
  default     = 90
}
