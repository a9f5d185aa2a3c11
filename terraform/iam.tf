# Least privilege: one service account per function, holding only bucket-level roles on what it uses.

resource "google_service_account" "fn" {
  for_each = local.functions

  account_id   = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name = "saikika ${each.key} function"
}

locals {
  # account (a function's, or the Dataflow workers') → bucket → role, narrowed to object-name prefixes by an IAM condition (uniform bucket-level access
  # makes conditions apply). objectCreator can create but never overwrite or delete (create-only writes);
  # objectUser is needed where an object is replaced under a generation precondition (lease, state, champion).
  # `except` names objects the binding must not reach even inside its prefixes: only promote may write the
  # champion pointer, a decision or the decision log, so retrain (which reads untrusted data) cannot promote.
  bucket_roles = [
    { account = "predict", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["models/"], except = [] },
    { account = "predict", bucket = "predictions", role = "roles/storage.objectCreator", prefixes = ["predictions/", "rejected/"], except = [] },
    { account = "predict_http", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["models/"], except = [] },
    # The request-response log: sampled online predictions, create-only, beside the event path's in its days.
    { account = "predict_http", bucket = "predictions", role = "roles/storage.objectCreator", prefixes = ["predictions/dt={day}/http-"], except = [] },
    { account = "feedback", bucket = "data", role = "roles/storage.objectCreator", prefixes = ["training/feedback/"], except = [] },
    { account = "feedback", bucket = "predictions", role = "roles/storage.objectCreator", prefixes = ["rejected/feedback/"], except = [] },
    { account = "retrain", bucket = "data", role = "roles/storage.objectViewer", prefixes = ["training/", "eval/"], except = [] },
    # Compaction: day shards and their manifest under compacted/ (overwritten under a generation precondition),
    # and the folded feedback objects deleted (objectUser: delete; the bucket keeps them as noncurrent versions).
    { account = "retrain", bucket = "data", role = "roles/storage.objectUser", prefixes = ["compacted/", "training/feedback/"], except = [] },
    # monitoring/: the tick rewrites monitoring/health.json and the day's label drift (under generation
    # preconditions), and each run writes the champion's live quality; nothing is triggered there.
    { account = "retrain", bucket = "models", role = "roles/storage.objectUser", prefixes = ["retrain/", "monitoring/"], except = [] },
    { account = "retrain", bucket = "models", role = "roles/storage.objectCreator", prefixes = ["models/"], except = ["models/champion.json", "models/history/", "/decision.json"] },
    # Pretrained title word vectors (SAIKIKA_WORD_VECTORS), uploaded by an engineer with `saikika word-vectors push`.
    # And the champion pointer, versions' metadata.json (the drift baseline, label_shares) and the decision log:
    # what the loop's health reports (read only).
    { account = "retrain", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["word-vectors/", "models/"], except = [] },
    { account = "promote", bucket = "data", role = "roles/storage.objectViewer", prefixes = ["training/", "eval/", "compacted/"], except = [] },
    { account = "promote", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["models/"], except = [] },
    { account = "promote", bucket = "models", role = "roles/storage.objectUser", prefixes = ["models/champion.json", "models/history/"], except = [] },
    { account = "promote", bucket = "models", role = "roles/storage.objectCreator", prefixes = ["models/"], except = ["models/champion.json", "models/history/"] },
    # Re-score on promotion: promote records the launch of its batch job in the run's folder (_RUN.json).
    { account = "promote", bucket = "predictions", role = "roles/storage.objectUser", prefixes = ["batch/"], except = [] },
    { account = "batch", bucket = "data", role = "roles/storage.objectViewer", prefixes = ["batch/input/"], except = [] },
    { account = "batch", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["models/"], except = [] },
    # objectUser: the run record (_RUN.json) is updated under a generation precondition; parts are create-only.
    { account = "batch", bucket = "predictions", role = "roles/storage.objectUser", prefixes = ["batch/"], except = [] },
    { account = "batch", bucket = "predictions", role = "roles/storage.objectCreator", prefixes = ["rejected/batch/"], except = [] },
    # A finished run's label drift, one create-only object per run.
    { account = "batch", bucket = "models", role = "roles/storage.objectCreator", prefixes = ["monitoring/drift/batch/"], except = [] },
    # Dataflow workers read the batch inputs and the catalogue, the model version, and write whole shards (a
    # retried bundle rewrites its shard: objectUser) of batch runs only.
    { account = "dataflow_worker", bucket = "data", role = "roles/storage.objectViewer", prefixes = ["batch/input/", "catalogue/"], except = [] },
    { account = "dataflow_worker", bucket = "models", role = "roles/storage.objectViewer", prefixes = ["models/"], except = ["models/champion.json", "models/history/"] },
    { account = "dataflow_worker", bucket = "predictions", role = "roles/storage.objectUser", prefixes = ["batch/", "rejected/batch/"], except = ["/_RUN.json"] },
    # A job run's label drift, one object per run (create-only; a retried write is refused and logged).
    { account = "dataflow_worker", bucket = "models", role = "roles/storage.objectCreator", prefixes = ["monitoring/drift/batch/"], except = [] },
    { account = "dataflow_worker", bucket = "dataflow", role = "roles/storage.objectUser", prefixes = ["temp/", "staging/"], except = [] },
    { account = "dataflow_worker", bucket = "dataflow", role = "roles/storage.objectViewer", prefixes = ["templates/"], except = [] },
    # Launching a Flex Template reads its spec file.
    { account = "batch", bucket = "dataflow", role = "roles/storage.objectViewer", prefixes = ["templates/"], except = [] },
    { account = "promote", bucket = "dataflow", role = "roles/storage.objectViewer", prefixes = ["templates/"], except = [] },
  ]
  accounts = merge({ for name, account in google_service_account.fn : name => account.email },
  { dataflow_worker = google_service_account.dataflow_worker.email })
  buckets = {
    data        = google_storage_bucket.data.name
    models      = google_storage_bucket.models.name
    predictions = google_storage_bucket.predictions.name
    dataflow    = google_storage_bucket.dataflow.name
  }
}

resource "google_storage_bucket_iam_member" "fn" {
  for_each = { for r in local.bucket_roles : "${r.account}/${r.bucket}/${r.role}" => r }

  bucket = local.buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${local.accounts[each.value.account]}"

  condition {
    title       = "${each.value.account} ${each.value.bucket} ${join(" ", each.value.prefixes)}"
    description = "Objects under the listed prefixes only; listing is a bucket-level check."
    # An `except` entry starting with "/" matches a name's end (models/<version>/decision.json); others its start.
    expression = format("resource.type == 'storage.googleapis.com/Bucket' || ((%s)%s)",
      # A prefix holding a {placeholder} (one path segment, such as a day) is matched with extract().
      join(" || ", [for p in each.value.prefixes : strcontains(p, "{")
        ? "(resource.name.startsWith('projects/_/buckets/${local.buckets[each.value.bucket]}/objects/${split("{", p)[0]}') && resource.name.extract('projects/_/buckets/${local.buckets[each.value.bucket]}/objects/${p}') != '')"
      : "resource.name.startsWith('projects/_/buckets/${local.buckets[each.value.bucket]}/objects/${p}')"]),
      join("", [for x in each.value.except : startswith(x, "/")
        ? " && !resource.name.endsWith('${x}')"
      : " && !resource.name.startsWith('projects/_/buckets/${local.buckets[each.value.bucket]}/objects/${x}')"])
    )
  }
}

# The tick's label drift is one listing of a day's predictions (object names and custom metadata): a custom role
# with storage.objects.list only, so the retrain account (which reads untrusted data) can never read, let alone
# write, a prediction. objectViewer would also grant storage.objects.get on every prediction object.
resource "google_project_iam_custom_role" "object_lister" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_object_lister"
  title       = "saikika object lister"
  description = "List objects (names and metadata) without reading them: the label drift step."
  permissions = ["storage.objects.list"]
}

resource "google_storage_bucket_iam_member" "retrain_lists_predictions" {
  bucket = google_storage_bucket.predictions.name
  role   = google_project_iam_custom_role.object_lister.id
  member = "serviceAccount:${google_service_account.fn["retrain"].email}"
}

# Publishing confirmed labels is granted on the feedback topic itself, to the listed members only.
resource "google_pubsub_topic_iam_member" "feedback_publishers" {
  for_each = toset(var.feedback_publishers)

  topic  = google_pubsub_topic.feedback.id
  role   = "roles/pubsub.publisher"
  member = each.value
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

# Function builds (Cloud Build) run as this account: it reads the sources, writes images and logs, nothing else.
resource "google_service_account" "builder" {
  account_id   = "${var.name_prefix}-builder"
  display_name = "saikika function builds"
}

resource "google_project_iam_member" "builder" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_storage_bucket_iam_member" "builder_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.builder.email}"
}

# The data-access audit logs the buckets' checkov skips (CKV_GCP_62) rely on: who read and wrote which object.
resource "google_project_iam_audit_config" "storage" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
