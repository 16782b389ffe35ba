variable "cluster_name" {
  description = "Name of the k3d cluster (its kubeconfig context is k3d-<name>)."
  type        = string
  default     = "coelho"
}

variable "servers" {
  description = "Number of k3s server (control-plane) nodes."
  type        = number
  default     = 1
}

variable "agents" {
  description = "Number of k3s agent (worker) nodes: Dagster run pods spread over them."
  type        = number
  default     = 3
}

variable "k3s_image" {
  description = "The k3s node image (its version is the Kubernetes version of the cluster)."
  type        = string
  default     = "rancher/k3s:v1.31.5-k3s1"
}

variable "registry_name" {
  description = "Name of the k3d image registry; k3d names its container k3d-<name>."
  type        = string
  default     = "coelho-registry.localhost"
}

variable "registry_port" {
  description = "Host port of the registry: push to localhost:<port>/coelho:<tag>."
  type        = number
  default     = 5005
}

variable "http_port" {
  description = "Host port of the k3d load balancer (Traefik): UIs at http://<name>.localhost:<port>."
  type        = number
  default     = 8080
}

variable "data_dir" {
  description = "Host directory mounted into every node as k3s' local-path storage, so persistent volumes (Kafka, PostgreSQL, MinIO, Redis) live on the host. Empty: .coelho/k3d in the repository."
  type        = string
  default     = ""
}

variable "kubeconfig_path" {
  description = "Kubeconfig that k3d writes the cluster's context into and Helm reads."
  type        = string
  default     = "~/.kube/config"
}

variable "namespace" {
  description = "Namespace of the Coelho release (one Coelho per namespace)."
  type        = string
  default     = "coelho"
}

variable "chart_path" {
  description = "Path of the umbrella chart. Empty: helm/coelho in the repository."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the Coelho image pushed to the k3d registry (make k3d-up sets it)."
  type        = string
  default     = "0.1.0"
}

variable "api_key" {
  description = "API key of the Coelho API. Empty: the chart generates one (read it from the coelho-env Secret)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "helm_timeout" {
  description = "Seconds Helm waits for the release (images are pulled on first install)."
  type        = number
  default     = 1800
}
