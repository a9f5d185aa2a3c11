# Least privilege: one service account per function, holding only bucket-level roles on what it uses.

resource "google_service_account" "fn" {
  for_each = local.functions

  account_id   = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name = "saikika ${each.key} function"
}

locals {
  # function → bucket → role. objectCreator can create but never overwrite or delete (create-only writes);
  # objectUser is needed where an object is replaced under a generation precondition (lease, state, champion).
  bucket_roles = [
    { function = "predict", bucket = "models", role = "roles/storage.objectViewer" },
    { function = "predict", bucket = "predictions", role = "roles/storage.objectCreator" },
    { function = "predict_http", bucket = "models", role = "roles/storage.objectViewer" },
    { function = "feedback", bucket = "data", role = "roles/storage.objectCreator" },
    { function = "feedback", bucket = "predictions", role = "roles/storage.objectCreator" },
    { function = "retrain", bucket = "data", role = "roles/storage.objectViewer" },
    { function = "retrain", bucket = "models", role = "roles/storage.objectUser" },
    { function = "promote", bucket = "data", role = "roles/storage.objectViewer" },
    { function = "promote", bucket = "models", role = "roles/storage.objectUser" },
  ]
  buckets = {
    data        = google_storage_bucket.data.name
    models      = google_storage_bucket.models.name
    predictions = google_storage_bucket.predictions.name
  }
}

resource "google_storage_bucket_iam_member" "fn" {
  for_each = { for r in local.bucket_roles : "${r.function}/${r.bucket}/${r.role}" => r }

  bucket = local.buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

# Pub/Sub pushes with an OIDC token of this account, which may invoke the event-driven functions only.
resource "google_service_account" "pubsub_invoker" {
  account_id   = "${var.name_prefix}-pubsub-push"
  display_name = "saikika Pub/Sub push invoker"
}

resource "google_cloud_run_service_iam_member" "pubsub_invokes" {
  for_each = { for name, f in local.functions : name => f if f.kind == "cloudevent" }

  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_invoker.email}"
}

# predict_http: only the listed members, never allUsers (validated in variables.tf).
resource "google_cloud_run_service_iam_member" "http_invokers" {
  for_each = toset(var.http_invokers)

  location = var.region
  service  = google_cloudfunctions2_function.fn["predict_http"].name
  role     = "roles/run.invoker"
  member   = each.value
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# The Pub/Sub service agent mints the push tokens, forwards dead letters, and acknowledges what it forwarded.
resource "google_service_account_iam_member" "pubsub_agent_mints_tokens" {
  service_account_id = google_service_account.pubsub_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  for_each = google_pubsub_topic.dead_letter

  topic  = each.value.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_dead_lettered" {
  for_each = google_pubsub_subscription.push

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
