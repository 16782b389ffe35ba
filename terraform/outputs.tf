output "kube_context" {
  description = "kubectl context of the cluster."
  value       = "k3d-${var.cluster_name}"
}

output "registry_push_address" {
  description = "Where `docker push` sends the Coelho image from the host."
  value       = "localhost:${var.registry_port}/coelho:${var.image_tag}"
}

output "image" {
  description = "The Coelho image as the cluster pulls it."
  value       = "${local.image}:${var.image_tag}"
}

output "dagster_url" {
  description = "Dagster UI (through Traefik; or port-forward, see the README)."
  value       = "http://dagster.localhost:${var.http_port}"
}

output "api_url" {
  description = "Coelho API; its OpenAPI UI is at /docs."
  value       = "http://api.localhost:${var.http_port}"
}

output "mlflow_url" {
  description = "MLflow UI."
  value       = "http://mlflow.localhost:${var.http_port}"
}

output "grafana_url" {
  description = "Grafana (user admin; password in the coelho-grafana Secret)."
  value       = "http://grafana.localhost:${var.http_port}"
}

output "data_dir" {
  description = "Host directory holding the persistent volumes."
  value       = local.data_dir
}
