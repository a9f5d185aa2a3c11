# Topics, and one push subscription per (topic, function) with its own dead-letter topic.

resource "google_pubsub_topic" "items" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-items"
}

resource "google_pubsub_topic" "feedback" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-feedback"
}

resource "google_pubsub_topic" "retrain_requests" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-retrain-requests"
}

# Bucket events: one topic per bucket whose objects start work (notifications.tf).
resource "google_pubsub_topic" "data_events" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-data-events"
}

resource "google_pubsub_topic" "batch_inputs" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-batch-inputs"
}

resource "google_pubsub_topic" "models_events" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  name = "${var.name_prefix}-models-events"
}

locals {
  topics = {
    items            = google_pubsub_topic.items
    feedback         = google_pubsub_topic.feedback
    retrain_requests = google_pubsub_topic.retrain_requests
    data_events      = google_pubsub_topic.data_events
    batch_inputs     = google_pubsub_topic.batch_inputs
    models_events    = google_pubsub_topic.models_events
  }

  # Which function each topic delivers to. Each function also ignores, in code, any event that is not for
  # its own bucket and prefix: nothing relies on subscription filters.
  subscriptions = {
    items-to-predict            = { topic = "items", function = "predict", max_delivery_attempts = var.max_delivery_attempts }
    feedback-to-feedback        = { topic = "feedback", function = "feedback", max_delivery_attempts = var.max_delivery_attempts }
    data-events-to-retrain      = { topic = "data_events", function = "retrain", max_delivery_attempts = var.retrain_max_delivery_attempts }
    retrain-requests-to-retrain = { topic = "retrain_requests", function = "retrain", max_delivery_attempts = var.retrain_max_delivery_attempts }
    models-events-to-promote    = { topic = "models_events", function = "promote", max_delivery_attempts = var.max_delivery_attempts }
    batch-inputs-to-batch       = { topic = "batch_inputs", function = "batch", max_delivery_attempts = var.max_delivery_attempts }
  }
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  for_each = local.subscriptions

  name = "${var.name_prefix}-${each.key}-dead-letter"
}

# Keeps dead letters for inspection and replay.
resource "google_pubsub_subscription" "dead_letter_keep" {
  for_each = local.subscriptions

  name                       = "${var.name_prefix}-${each.key}-dead-letter-keep"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.subscriptions

  name                 = "${var.name_prefix}-${each.key}"
  topic                = local.topics[each.value.topic].id
  ack_deadline_seconds = min(600, var.function_resources[each.value.function].timeout_seconds)

  push_config {
    # The raw-push path functions-framework turns into a messagePublished CloudEvent, as in the local stack.
    push_endpoint = "${google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri}/projects/${var.project_id}/topics/${local.topics[each.value.topic].name}"

    oidc_token {
      service_account_email = google_service_account.pubsub_invoker.email
      audience              = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  expiration_policy {
    ttl = ""
  }
}
