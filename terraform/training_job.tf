# Training that outgrows the retrain function (540 s, 4 GiB) runs as a Cloud Run job: the same entry point
# (`python -m saikika.handlers.training_job`, training_job/Dockerfile), the retrain function's service account and
# settings, hours and more memory. The retrain function starts an execution with the run's arguments as overrides;
# nothing runs while there is no work.

locals {
  training_job_name = "${var.name_prefix}-training"
  training_job_id   = "projects/${var.project_id}/locations/${var.region}/jobs/${local.training_job_name}"
  training_image    = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/saikika-training:${var.training_image_tag}"
}

resource "google_cloud_run_v2_job" "training" {
  name                = local.training_job_name
  location            = var.region
  deletion_protection = false

  template {
    task_count = 1

    template {
      service_account = google_service_account.fn["retrain"].email
      timeout         = "${var.training_job_timeout_s}s"
      # The loop retries: a failed execution is recorded, its work retried on the next tick (at most 3 times).
      max_retries = 0

      containers {
        image = local.training_image

        resources {
          limits = {
            cpu    = var.training_job_cpu
            memory = var.training_job_memory
          }
        }

        dynamic "env" {
          for_each = local.settings_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}

# The retrain function may start executions of this job (with overrides: the run's arguments), and nothing else.
resource "google_cloud_run_v2_job_iam_member" "retrain_runs_training" {
  name     = google_cloud_run_v2_job.training.name
  location = google_cloud_run_v2_job.training.location
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.fn["retrain"].email}"
}

# The training job's image is pulled by Cloud Run's service agent from the project's repository.
