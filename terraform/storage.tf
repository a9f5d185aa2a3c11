# Three buckets, because a storage trigger filters by bucket only: keeping training data, models and
# outputs apart is what keeps the loop from triggering itself.

locals {
  bucket_names = {
    data        = "${var.name_prefix}-data-${var.project_id}"
    models      = "${var.name_prefix}-models-${var.project_id}"
    predictions = "${var.name_prefix}-predictions-${var.project_id}"
    sources     = "${var.name_prefix}-sources-${var.project_id}"
  }
}

resource "google_storage_bucket" "data" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy usage logs.
  name                        = local.bucket_names.data
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Feedback corrects labels by adding objects; versions keep every earlier object recoverable.
  versioning {
    enabled = true
  }

  # Versions keep overwritten and deleted objects recoverable for a while, not forever: the lease and retrain
  # state are overwritten on every run.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "models" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy usage logs.
  name                        = local.bucket_names.models
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  # Versions keep overwritten and deleted objects recoverable for a while, not forever: the lease and retrain
  # state are overwritten on every run.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "predictions" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy usage logs.
  # checkov:skip=CKV_GCP_78:Objects are written create-only and expire by lifecycle; versions would only keep what retention deletes.
  name                        = local.bucket_names.predictions
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  lifecycle_rule {
    condition {
      age            = var.predictions_retention_days
      matches_prefix = ["predictions/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.rejected_retention_days
      matches_prefix = ["rejected/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62:Only terraform writes here; access is audited with Cloud Audit Logs.
  name                        = local.bucket_names.sources
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  depends_on = [google_project_service.apis]
}

# Named by content: a function whose package did not change keeps the same object and is not redeployed.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  name   = "${each.key}-${filesha256("${var.packages_dir}/${each.key}.zip")}.zip"
  bucket = google_storage_bucket.sources.name
  source = "${var.packages_dir}/${each.key}.zip"
}
