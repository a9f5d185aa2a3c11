# Batch prediction on Dataflow. Jobs are launched (by the batch function for large files, by promote when
# re-score on promotion is on, or by hand with `gcloud dataflow flex-template run`), never kept as terraform
# resources: a finished job is not something to converge on. What a job needs exists here: the bucket for the
# template spec, staging and temp files, the image repository, and the workers' service account.

resource "google_storage_bucket" "dataflow" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy usage logs.
  # checkov:skip=CKV_GCP_78:Temporary and staging files only; the template spec is rebuilt from the repo.
  name                        = "${var.name_prefix}-dataflow-${var.project_id}"
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["temp/", "staging/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# The images built from this repo: the batch Flex Template (`gcloud dataflow flex-template build`) and the
# training job (`gcloud builds submit`); README, Deploy.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Google-managed encryption keys; set kms_key_name here if your policy requires CMEK.
  location      = var.region
  repository_id = "${var.name_prefix}-images"
  format        = "DOCKER"
  description   = "saikika batch Flex Template and training job images"

  depends_on = [google_project_service.apis]
}

locals {
  dataflow_template = "gs://${google_storage_bucket.dataflow.name}/${var.dataflow_template_object}"
  # Built and pushed by `gcloud dataflow flex-template build` (README, Deploy); the workers run it too.
  dataflow_image = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/saikika-batch:${var.dataflow_image_tag}"
}

# Workers (and the template's launcher VM) run as this account: the Dataflow worker role, the image, and the
# bucket prefixes in iam.tf's bucket_roles. Nothing else.
resource "google_service_account" "dataflow_worker" {
  account_id   = "${var.name_prefix}-dataflow-worker"
  display_name = "saikika batch Dataflow workers"
}

resource "google_project_iam_member" "dataflow_worker" {
  project = var.project_id
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.dataflow_worker.email}"
}

resource "google_artifact_registry_repository_iam_member" "dataflow_worker_pulls" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.dataflow_worker.email}"
}

# The functions that launch jobs (batch; promote, for re-score on promotion): create jobs, and run them as the
# worker account (actAs on that one account only, not on the project).
locals {
  dataflow_launchers = toset(["batch", "promote"])
}

# Launching is creating a job (and reading it back): a custom role with those permissions only, rather than
# roles/dataflow.developer (which also cancels, updates and snapshots any job of the project).
resource "google_project_iam_custom_role" "dataflow_launcher" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_dataflow_launcher"
  title       = "saikika batch job launcher"
  description = "Create Dataflow jobs from the batch Flex Template and read their state."
  permissions = ["dataflow.jobs.create", "dataflow.jobs.get"]
}

resource "google_project_iam_member" "dataflow_launchers" {
  for_each = local.dataflow_launchers

  project = var.project_id
  role    = google_project_iam_custom_role.dataflow_launcher.id
  member  = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_service_account_iam_member" "dataflow_launchers_act_as_worker" {
  for_each = local.dataflow_launchers

  service_account_id = google_service_account.dataflow_worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.fn[each.key].email}"
}
