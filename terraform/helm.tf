# The Coelho umbrella chart (Dagster, Kafka, Redis, PostgreSQL, MinIO, MLflow, monitoring)
# with the k3d values. `dependency_update` fetches the dependency charts.
resource "helm_release" "coelho" {
  depends_on = [null_resource.cluster]

  name              = local.release_name
  chart             = local.chart_path
  namespace         = var.namespace
  create_namespace  = true
  dependency_update = true
  wait              = true
  timeout           = var.helm_timeout

  values = [file("${local.chart_path}/values-k3d.yaml")]

  set {
    name  = "image.repository"
    value = local.image
  }

  set {
    name  = "image.tag"
    value = var.image_tag
  }

  set {
    name  = "dagster.dagster-user-deployments.deployments[0].image.repository"
    value = local.image
  }

  set {
    name  = "dagster.dagster-user-deployments.deployments[0].image.tag"
    value = var.image_tag
  }

  set_sensitive {
    name  = "secrets.apiKey"
    value = var.api_key
  }
}
