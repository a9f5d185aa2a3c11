# Alerts and a dashboard (docs/monitoring.md, "Alerts and dashboard"): who is told, what they are told about, and
# one page of the loop's figures. Every log filter is in local.log_filters (one place): the alert policies and the
# log-based metrics read them from there, and tests/unit/test_alert_filters.py evaluates each against the log lines
# the code writes (tests/fixtures/logs/), so a renamed message or field cannot silently disable an alert.

locals {
  # saikika's own log entries: the functions (2nd gen functions run, and log, as Cloud Run revisions named after
  # the function) and the training job (a Cloud Run job, training_job.tf), which writes `live quality` too.
  saikika_logs = "((resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${var.name_prefix}-\") OR (resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"${local.training_job_name}\"))"

  # The messages and fields are saikika's log lines (docs/monitoring.md): change them together.
  log_filters = {
    errors                = "${local.saikika_logs} AND severity>=ERROR"
    loop_stalled          = "${local.saikika_logs} AND jsonPayload.message=\"loop health\" AND jsonPayload.status=\"stalled\""
    live_quality_degraded = "${local.saikika_logs} AND jsonPayload.message=\"live quality\" AND jsonPayload.degraded=true"
    label_drift           = "${local.saikika_logs} AND jsonPayload.message=\"label drift\" AND jsonPayload.above_bound=true"
    live_quality          = "${local.saikika_logs} AND jsonPayload.message=\"live quality\""
    drift                 = "${local.saikika_logs} AND jsonPayload.message=\"label drift\""
    # A run's outcome line (`retrain trained`, `retrain failed`, ...) carries `status`; the other `retrain ...`
    # lines (deferred, not needed, a request's warning) do not.
    retrain_runs = "${local.saikika_logs} AND jsonPayload.message=~\"^retrain \" AND jsonPayload.status:*"
  }

  # The subscriptions that keep dead letters (pubsub.tf), in Cloud Monitoring's filter language (a full RE2 match):
  # their backlog, for the alert and the dashboard.
  dead_letter_backlog = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id = monitoring.regex.full_match(\"${var.name_prefix}-.+-dead-letter-keep\")"

  # What each log-match alert policy says, and how bad it is.
  log_alerts = {
    errors = {
      name     = "saikika: errors in the functions or the training job"
      severity = "ERROR"
      content  = "A function or the training job wrote a log entry of severity ERROR or worse (a failed run, a crash, a request answered 5xx). Open the entry from the incident; docs/monitoring.md, \"Alerts and dashboard\"."
    }
    loop_stalled = {
      name     = "saikika: the loop has stalled"
      severity = "CRITICAL"
      content  = "The retrain tick found pending work older than SAIKIKA_STALL_AFTER_S with no successful run since, or SAIKIKA_STALL_FAILED_RUNS failed runs in a row. `saikika status` and the `problems` field of the entry say why."
    }
    live_quality_degraded = {
      name     = "saikika: the champion's live quality degraded"
      severity = "WARNING"
      content  = "On the feedback it never trained on, the champion's micro F1 fell below SAIKIKA_LIVE_F1_FLOOR or more than SAIKIKA_LIVE_F1_MARGIN below its offline F1. The entry's `why` and `worst_label` name the label."
    }
    label_drift = {
      name     = "saikika: label drift above its bound"
      severity = "WARNING"
      content  = "A day's (or a batch run's) label mix, over at least SAIKIKA_DRIFT_MIN_ITEMS predicted items, diverges from the champion's training mix by more than SAIKIKA_DRIFT_BOUND (Jensen-Shannon, base 2). The entry's `moved_label` and `no_label_share` say what moved."
    }
  }

  # The log-based metrics: a distribution of a number the line carries, or a count of lines, labelled.
  log_metrics = {
    live_micro_f1 = {
      filter      = local.log_filters.live_quality
      description = "The champion's micro F1 on feedback it never trained on, one value per retrain run that scored feedback."
      value       = "EXTRACT(jsonPayload.micro_f1)"
      labels      = { champion_version = "EXTRACT(jsonPayload.champion_version)" }
    }
    label_drift_divergence = {
      filter      = local.log_filters.drift
      description = "Jensen-Shannon divergence (base 2) of the day's or batch run's label mix from the champion's training mix."
      value       = "EXTRACT(jsonPayload.divergence)"
      labels      = { source = "EXTRACT(jsonPayload.source)" }
    }
    retrain_runs = {
      filter      = local.log_filters.retrain_runs
      description = "Retrain runs, by outcome (trained, up-to-date, rejected, failed, ...)."
      value       = null
      labels      = { status = "EXTRACT(jsonPayload.status)" }
    }
    errors = {
      filter      = local.log_filters.errors
      description = "Log entries of severity ERROR or worse from the functions and the training job."
      value       = null
      labels      = { service = "EXTRACT(resource.labels.service_name)" }
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  display_name = "saikika alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "loop" {
  for_each = local.log_metrics

  name        = "${var.name_prefix}_${each.key}"
  description = each.value.description
  filter      = each.value.filter

  value_extractor  = each.value.value
  label_extractors = each.value.labels

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.value == null ? "INT64" : "DISTRIBUTION"
    unit        = "1"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  # F1 and divergence are both between 0 and 1: twenty buckets of 0.05.
  dynamic "bucket_options" {
    for_each = each.value.value == null ? [] : [1]
    content {
      linear_buckets {
        num_finite_buckets = 20
        width              = 0.05
        offset             = 0
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "log_match" {
  for_each = local.log_alerts

  display_name          = each.value.name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]

  conditions {
    display_name = each.value.name

    condition_matched_log {
      filter = local.log_filters[each.key]
    }
  }

  # A log-match condition requires a rate limit: at most one notification per period for a burst of entries.
  alert_strategy {
    notification_rate_limit {
      period = var.alert_notification_period
    }
    auto_close = "86400s"
  }

  documentation {
    content   = each.value.content
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "saikika: messages in a dead-letter subscription"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]

  conditions {
    display_name = "undelivered messages in a dead-letter subscription"

    condition_threshold {
      filter          = local.dead_letter_backlog
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    content   = "A message failed every delivery attempt and was moved to its subscription's dead-letter topic; the `...-dead-letter-keep` subscription holds it for 7 days. Read it, fix the cause, and republish it to the original topic (docs/operations.md)."
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.apis]
}

locals {
  user_metric = "metric.type=\"logging.googleapis.com/user"
  # The dashboard's charts: one metric each, aligned per series over `period`, then summed by `group_by` if given.
  dashboard_charts = [
    { title = "Live micro F1 (median per hour, by champion)", filter = "${local.user_metric}/${google_logging_metric.loop["live_micro_f1"].name}\"", aligner = "ALIGN_PERCENTILE_50", group_by = [], plot = "LINE", period = "3600s" },
    { title = "Label drift divergence (99th percentile per hour, by source)", filter = "${local.user_metric}/${google_logging_metric.loop["label_drift_divergence"].name}\"", aligner = "ALIGN_PERCENTILE_99", group_by = [], plot = "LINE", period = "3600s" },
    { title = "Retrain runs by outcome", filter = "${local.user_metric}/${google_logging_metric.loop["retrain_runs"].name}\"", aligner = "ALIGN_DELTA", group_by = ["metric.label.status"], plot = "STACKED_BAR", period = "3600s" },
    { title = "Dead-letter backlog (undelivered messages)", filter = local.dead_letter_backlog, aligner = "ALIGN_MAX", group_by = [], plot = "LINE", period = "300s" },
    { title = "Errors by function (functions and training job)", filter = "${local.user_metric}/${google_logging_metric.loop["errors"].name}\"", aligner = "ALIGN_DELTA", group_by = ["metric.label.service"], plot = "STACKED_BAR", period = "300s" },
  ]
}

resource "google_monitoring_dashboard" "loop" {
  dashboard_json = jsonencode({
    displayName = "saikika: the loop"
    mosaicLayout = {
      columns = 48
      tiles = [
        for index, chart in local.dashboard_charts : {
          xPos   = (index % 2) * 24
          yPos   = floor(index / 2) * 16
          width  = 24
          height = 16
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = chart.plot
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = chart.filter
                    aggregation = merge(
                      { alignmentPeriod = chart.period, perSeriesAligner = chart.aligner },
                      length(chart.group_by) == 0 ? {} : { crossSeriesReducer = "REDUCE_SUM", groupByFields = chart.group_by },
                    )
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })

  depends_on = [google_project_service.apis]
}
