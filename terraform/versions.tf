terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # The k3d cluster and registry are made with the k3d CLI (local-exec): no third-party
    # provider to trust, and the same commands a user would type.
    null = {
      source  = "hashicorp/null"
      version = "~> 3.2"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
  }
}

provider "helm" {
  kubernetes {
    config_path    = pathexpand(var.kubeconfig_path)
    config_context = "k3d-${var.cluster_name}"
  }
}
