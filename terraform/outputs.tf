output "buckets" {
  description = "Bucket names by role."
  value = {
    data        = google_storage_bucket.data.name
    models      = google_storage_bucket.models.name
    predictions = google_storage_bucket.predictions.name
    sources     = google_storage_bucket.sources.name
  }
}

output "topics" {
  description = "Topic names by role."
  value       = { for key, topic in local.topics : key => topic.name }
}

output "dead_letter_subscriptions" {
  description = "Where dead letters are kept, by push subscription."
  value       = { for key, sub in google_pubsub_subscription.dead_letter_keep : key => sub.name }
}

output "predict_http_url" {
  description = "URL of predict_http (authenticated: callers need roles/run.invoker)."
  value       = google_cloudfunctions2_function.fn["predict_http"].service_config[0].uri
}

output "publish_example" {
  description = "A ready gcloud command that publishes one item."
  value       = "gcloud pubsub topics publish ${google_pubsub_topic.items.name} --project=${var.project_id} --message='{\"id\": \"item-1\", \"title\": \"防水 Bluetooth スピーカー\", \"tags\": [\"audio\"]}'"
}

output "http_example" {
  description = "A ready curl command for predict_http, with your own identity token."
  value       = "curl -s -X POST ${google_cloudfunctions2_function.fn["predict_http"].service_config[0].uri} -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" -H 'Content-Type: application/json' -d '{\"instances\": [{\"id\": \"item-1\", \"title\": \"vintage handmade mug\"}]}'"
}
