locals {
  repo_root     = abspath("${path.module}/..")
  data_dir      = var.data_dir != "" ? abspath(var.data_dir) : "${local.repo_root}/.coelho/k3d"
  chart_path    = var.chart_path != "" ? abspath(var.chart_path) : "${local.repo_root}/helm/coelho"
  registry_host = "k3d-${var.registry_name}:${var.registry_port}"
  image         = "${local.registry_host}/coelho"
  # Names in the chart are fixed (`coelho-*`): the release is always called coelho.
  release_name = "coelho"
}

# The image registry, reachable from the host at localhost:<port> and from the cluster at
# k3d-<name>:<port>.
resource "null_resource" "registry" {
  triggers = {
    name = var.registry_name
    port = var.registry_port
  }

  provisioner "local-exec" {
    command = "k3d registry list k3d-${self.triggers.name} >/dev/null 2>&1 || k3d registry create ${self.triggers.name} --port ${self.triggers.port}"
  }

  provisioner "local-exec" {
    when       = destroy
    command    = "k3d registry delete k3d-${self.triggers.name}"
    on_failure = continue
  }
}

# 1 server and 3 agents; the host data directory is every node's local-path storage.
resource "null_resource" "cluster" {
  depends_on = [null_resource.registry]

  triggers = {
    name     = var.cluster_name
    servers  = var.servers
    agents   = var.agents
    image    = var.k3s_image
    registry = local.registry_host
    data_dir = local.data_dir
    lb_port  = var.http_port
  }

  provisioner "local-exec" {
    command = join(" ", [
      "mkdir -p '${self.triggers.data_dir}/storage' &&",
      "k3d cluster create ${self.triggers.name}",
      "--servers ${self.triggers.servers}",
      "--agents ${self.triggers.agents}",
      "--image ${self.triggers.image}",
      "--registry-use ${self.triggers.registry}",
      "--volume '${self.triggers.data_dir}/storage:/var/lib/rancher/k3s/storage@all'",
      "--port '${self.triggers.lb_port}:80@loadbalancer'",
      "--kubeconfig-update-default --kubeconfig-switch-context",
      "--wait --timeout 300s",
    ])
  }

  provisioner "local-exec" {
    when       = destroy
    command    = "k3d cluster delete ${self.triggers.name}"
    on_failure = continue
  }
}
