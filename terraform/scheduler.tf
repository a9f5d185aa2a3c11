# Retraining's clock. The tick trains pending work once it has settled (the retrain function acknowledges data
# events and keeps their work pending; it never relies on Pub/Sub redelivering a failed push). With nothing
# pending a tick costs one listing of retrain/pending/.
resource "google_cloud_scheduler_job" "retrain_tick" {
  name      = "${var.name_prefix}-retrain-tick"
  region    = var.region
  schedule  = var.retrain_tick_schedule
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.retrain_requests.id
    data       = base64encode(jsonencode({ reason = "tick (Cloud Scheduler)" }))
  }

  depends_on = [google_project_service.apis]
}

# The periodic forced retrain: trains even when the data has not changed (for example after a library upgrade).
resource "google_cloud_scheduler_job" "periodic_retrain" {
  name      = "${var.name_prefix}-periodic-retrain"
  region    = var.region
  schedule  = var.retrain_schedule
  time_zone = var.retrain_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.retrain_requests.id
    data       = base64encode(jsonencode({ reason = "periodic retrain (Cloud Scheduler)", force = var.retrain_schedule_forces }))
  }

  depends_on = [google_project_service.apis]
}
