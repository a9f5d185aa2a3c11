# Bucket notifications: new training data reaches retrain, batch input files reach batch, new model versions
# reach promote.

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

# The GCS service agent may publish to these topics and nothing else.
resource "google_pubsub_topic_iam_member" "gcs_publishes_bucket_events" {
  for_each = {
    data_events   = google_pubsub_topic.data_events.id
    batch_inputs  = google_pubsub_topic.batch_inputs.id
    models_events = google_pubsub_topic.models_events.id
  }

  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "training_data" {
  bucket             = google_storage_bucket.data.name
  topic              = google_pubsub_topic.data_events.id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "training/"

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_bucket_events]
}

resource "google_storage_notification" "batch_inputs" {
  bucket             = google_storage_bucket.data.name
  topic              = google_pubsub_topic.batch_inputs.id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "batch/input/"

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_bucket_events]
}

resource "google_storage_notification" "model_versions" {
  bucket             = google_storage_bucket.models.name
  topic              = google_pubsub_topic.models_events.id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "models/"

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_bucket_events]
}
