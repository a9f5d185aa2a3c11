# The periodic retrain: a message on retrain-requests. With no new data since the last run it trains nothing.
resource "google_cloud_scheduler_job" "periodic_retrain" {
  name      = "${var.name_prefix}-periodic-retrain"
  region    = var.region
  schedule  = var.retrain_schedule
  time_zone = var.retrain_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.retrain_requests.id
    data       = base64encode(jsonencode({ reason = "periodic retrain (Cloud Scheduler)" }))
  }

  depends_on = [google_project_service.apis]
}
