# Predictions in BigQuery: external tables over the predictions bucket (no copy, no load job), partitioned by
# the `dt=` folders the functions and batch runs write (saikika.core.objects), with a partition filter required
# so a query never scans every day ever written. README, "Query the predictions", has the queries.

resource "google_bigquery_dataset" "saikika" {
  # checkov:skip=CKV_GCP_81:Google-managed encryption keys; set default_encryption_configuration if your policy requires CMEK.
  dataset_id  = var.bigquery_dataset
  location    = var.bigquery_location
  description = "saikika predictions (external tables over the predictions bucket)"

  depends_on = [google_project_service.apis]
}

locals {
  # The prediction record (saikika.core.records): the same fields on every path, plus what traces a line.
  prediction_fields = [
    { name = "id", type = "STRING", mode = "REQUIRED", description = "The item id." },
    { name = "labels", type = "STRING", mode = "REPEATED", description = "Labels above their thresholds, best first." },
    { name = "scores", type = "JSON", mode = "NULLABLE", description = "Every label's score, {label: score}." },
    { name = "model_version", type = "STRING", mode = "REQUIRED", description = "The model version that predicted." },
    { name = "predicted_at", type = "TIMESTAMP", mode = "REQUIRED", description = "When it was predicted." },
  ]
  prediction_tables = {
    # Event path: predictions/dt=YYYY-MM-DD/<message id>.jsonl; online path (predict_http's sampled request log):
    # predictions/dt=YYYY-MM-DD/http-<writer>-<time>-<sequence>.jsonl, whose lines carry `request_id` instead.
    predictions = {
      prefix = "predictions/"
      layout = "{dt:DATE}"
      traces = [
        { name = "message_id", type = "STRING", mode = "NULLABLE", description = "The items message (event path)." },
        { name = "request_id", type = "STRING", mode = "NULLABLE", description = "The HTTP request (online path)." },
      ]
      description = "Predictions of the event path (items published to Pub/Sub), one row per item and message."
    }
    # Batch runs: batch/dt=YYYY-MM-DD/run=<run id>/part-SSSSS-of-NNNNN.jsonl (_SUCCESS and _RUN.json are not .jsonl).
    batch_predictions = {
      prefix      = "batch/"
      layout      = "{dt:DATE}/{run:STRING}"
      traces      = [{ name = "run_id", type = "STRING", mode = "NULLABLE", description = "The batch run." }]
      description = "Predictions of batch runs (the batch function and Dataflow jobs), one row per item and run."
    }
  }
}

resource "google_bigquery_table" "predictions" {
  # checkov:skip=CKV_GCP_80:External table: the data stays in the predictions bucket (Google-managed keys there).
  for_each = local.prediction_tables

  dataset_id          = google_bigquery_dataset.saikika.dataset_id
  table_id            = each.key
  description         = each.value.description
  deletion_protection = true

  schema = jsonencode(concat(local.prediction_fields, each.value.traces))

  external_data_configuration {
    autodetect            = false
    source_format         = "NEWLINE_DELIMITED_JSON"
    source_uris           = ["gs://${google_storage_bucket.predictions.name}/${each.value.prefix}*.jsonl"]
    ignore_unknown_values = true

    hive_partitioning_options {
      # CUSTOM with typed keys: AUTO fails on a prefix that has no object yet (a fresh deployment).
      mode                     = "CUSTOM"
      source_uri_prefix        = "gs://${google_storage_bucket.predictions.name}/${each.value.prefix}${each.value.layout}"
      require_partition_filter = true
    }
  }
}

# The latest prediction per item id, over both paths, within the last `latest_predictions_days` days of
# partitions (a view cannot require a partition filter, and a filter on `dt` outside it cannot pass the window
# function: the bound inside is what keeps its cost from growing with history).
resource "google_bigquery_table" "latest_predictions" {
  # checkov:skip=CKV_GCP_80:A view stores no data.
  dataset_id          = google_bigquery_dataset.saikika.dataset_id
  table_id            = "latest_predictions"
  description         = "The newest prediction of each item id (event path, online path and batch runs), last ${var.latest_predictions_days} days."
  deletion_protection = true

  view {
    use_legacy_sql = false
    query          = <<-SQL
      SELECT * EXCEPT (newest)
      FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY predicted_at DESC, source DESC) AS newest
        FROM (
          SELECT id, labels, scores, model_version, predicted_at, dt,
            IF(request_id IS NULL, 'event', 'http') AS path, COALESCE(message_id, request_id) AS source
          FROM `${var.project_id}.${google_bigquery_dataset.saikika.dataset_id}.${google_bigquery_table.predictions["predictions"].table_id}`
          WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL ${var.latest_predictions_days} DAY)
          UNION ALL
          SELECT id, labels, scores, model_version, predicted_at, dt, 'batch' AS path, run_id AS source
          FROM `${var.project_id}.${google_bigquery_dataset.saikika.dataset_id}.${google_bigquery_table.predictions["batch_predictions"].table_id}`
          WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL ${var.latest_predictions_days} DAY)
        )
      )
      WHERE newest = 1
    SQL
  }
}

# Feedback in BigQuery: the confirmed labels the feedback function writes to the data bucket, loose
# (training/feedback/dt=DAY/<message id>.jsonl) until a retrain run folds them into compacted shards
# (compacted/dt=DAY/<stamp>-<digest>.jsonl; compacted/manifest.json is not .jsonl). A hive-partitioned external
# table has one source prefix, so each place is a table of its own; served_quality reads both.
locals {
  # A feedback row (saikika.handlers.feedback.feedback_records): the item, its confirmed labels and its trace.
  feedback_fields = [
    { name = "id", type = "STRING", mode = "REQUIRED", description = "The item id." },
    { name = "title", type = "STRING", mode = "NULLABLE", description = "The item's title." },
    { name = "description", type = "STRING", mode = "NULLABLE", description = "The item's description." },
    { name = "tags", type = "STRING", mode = "REPEATED", description = "The item's tags." },
    { name = "labels", type = "STRING", mode = "REPEATED", description = "The labels a user confirmed or corrected." },
    { name = "event_time", type = "TIMESTAMP", mode = "REQUIRED", description = "The feedback message's publish time." },
    { name = "message_id", type = "STRING", mode = "REQUIRED", description = "The feedback message." },
    { name = "received_at", type = "TIMESTAMP", mode = "NULLABLE", description = "When the feedback function handled it." },
    { name = "source", type = "STRING", mode = "NULLABLE", description = "The publisher's `source` attribute, if any." },
  ]
  feedback_tables = {
    feedback           = { prefix = "training/feedback/", layout = "{dt:DATE}", description = "Feedback not yet compacted, one row per item and feedback message." }
    feedback_compacted = { prefix = "compacted/", layout = "{dt:DATE}", description = "Feedback folded by retrain runs into daily shards, one row per item and feedback message." }
  }
}

resource "google_bigquery_table" "feedback" {
  # checkov:skip=CKV_GCP_80:External table: the data stays in the data bucket (Google-managed keys there).
  for_each = local.feedback_tables

  dataset_id          = google_bigquery_dataset.saikika.dataset_id
  table_id            = each.key
  description         = each.value.description
  deletion_protection = true

  schema = jsonencode(local.feedback_fields)

  external_data_configuration {
    autodetect            = false
    source_format         = "NEWLINE_DELIMITED_JSON"
    source_uris           = ["gs://${google_storage_bucket.data.name}/${each.value.prefix}*.jsonl"]
    ignore_unknown_values = true

    hive_partitioning_options {
      mode                     = "CUSTOM"
      source_uri_prefix        = "gs://${google_storage_bucket.data.name}/${each.value.prefix}${each.value.layout}"
      require_partition_filter = true
    }
  }
}

# Served quality: each feedback row (once: a folded object not yet deleted is in both tables) judged against the
# latest prediction served for its item before the feedback was published (the event path and the online path),
# per model version and label. Both sides within the last `served_quality_days` days of partitions.
resource "google_bigquery_table" "served_quality" {
  # checkov:skip=CKV_GCP_80:A view stores no data.
  dataset_id          = google_bigquery_dataset.saikika.dataset_id
  table_id            = "served_quality"
  description         = "Per model version and label: feedback rows judged, true and false positives, false negatives, precision and recall of the predictions served, last ${var.served_quality_days} days."
  deletion_protection = true

  view {
    use_legacy_sql = false
    query          = <<-SQL
      WITH feedback_rows AS (
        SELECT id, labels, event_time, message_id,
          ROW_NUMBER() OVER (PARTITION BY message_id, id ORDER BY received_at) AS copy
        FROM (
          SELECT id, labels, event_time, message_id, received_at
          FROM `${var.project_id}.${google_bigquery_dataset.saikika.dataset_id}.${google_bigquery_table.feedback["feedback"].table_id}`
          WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL ${var.served_quality_days} DAY)
          UNION ALL
          SELECT id, labels, event_time, message_id, received_at
          FROM `${var.project_id}.${google_bigquery_dataset.saikika.dataset_id}.${google_bigquery_table.feedback["feedback_compacted"].table_id}`
          WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL ${var.served_quality_days} DAY)
        )
      ),
      judged AS (
        SELECT feedback_row.message_id, feedback_row.id, feedback_row.labels AS confirmed,
          served.labels AS predicted, served.model_version,
          ROW_NUMBER() OVER (
            PARTITION BY feedback_row.message_id, feedback_row.id
            ORDER BY served.predicted_at DESC, COALESCE(served.message_id, served.request_id) DESC
          ) AS newest
        FROM feedback_rows AS feedback_row
        JOIN `${var.project_id}.${google_bigquery_dataset.saikika.dataset_id}.${google_bigquery_table.predictions["predictions"].table_id}` AS served
          ON served.id = feedback_row.id AND served.predicted_at <= feedback_row.event_time
        WHERE feedback_row.copy = 1
          AND served.dt >= DATE_SUB(CURRENT_DATE(), INTERVAL ${var.served_quality_days} DAY)
      ),
      label_rows AS (
        SELECT model_version, message_id, id, label,
          LOGICAL_OR(is_confirmed) AS confirmed, LOGICAL_OR(is_predicted) AS predicted
        FROM (
          SELECT model_version, message_id, id, label, TRUE AS is_confirmed, FALSE AS is_predicted
          FROM judged, UNNEST(confirmed) AS label
          WHERE newest = 1
          UNION ALL
          SELECT model_version, message_id, id, label, FALSE AS is_confirmed, TRUE AS is_predicted
          FROM judged, UNNEST(predicted) AS label
          WHERE newest = 1
        )
        GROUP BY model_version, message_id, id, label
      ),
      versions AS (
        SELECT model_version, COUNT(*) AS feedback_rows FROM judged WHERE newest = 1 GROUP BY model_version
      )
      SELECT label_rows.model_version, label, versions.feedback_rows,
        COUNTIF(confirmed AND predicted) AS true_positives,
        COUNTIF(predicted AND NOT confirmed) AS false_positives,
        COUNTIF(confirmed AND NOT predicted) AS false_negatives,
        SAFE_DIVIDE(COUNTIF(confirmed AND predicted), COUNTIF(predicted)) AS precision,
        SAFE_DIVIDE(COUNTIF(confirmed AND predicted), COUNTIF(confirmed)) AS recall
      FROM label_rows
      JOIN versions ON versions.model_version = label_rows.model_version
      GROUP BY label_rows.model_version, label, versions.feedback_rows
    SQL
  }
}
