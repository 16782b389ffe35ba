# Coelho on k3d: included from the Makefile (`include deploy/k3d.mk`).
#
#   make k3d-up     cluster + registry (Terraform), build and push the image, install the chart
#   make k3d-down   delete the release, the cluster and the registry (host data is kept)
#   make k3d-clean  k3d-down, then delete the host data directory
#
# Needs docker, k3d, kubectl, helm and terraform on PATH.

K3D_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
K3D_REGISTRY_PORT ?= 5005
K3D_TF := terraform -chdir=terraform
K3D_TF_VARS := -var image_tag=$(K3D_TAG) -var registry_port=$(K3D_REGISTRY_PORT)
K3D_IMAGE := localhost:$(K3D_REGISTRY_PORT)/coelho:$(K3D_TAG)

.PHONY: k3d-up k3d-down k3d-clean k3d-check-tools k3d-cluster k3d-image k3d-deploy k3d-urls

k3d-check-tools:
	@for tool in docker k3d kubectl helm terraform; do \
		command -v $$tool >/dev/null 2>&1 || { echo "k3d: '$$tool' is not on PATH (see README, Kubernetes)"; exit 1; }; \
	done

# 1. The registry and the cluster (1 server, 3 agents, host storage).
k3d-cluster: k3d-check-tools
	$(K3D_TF) init -input=false
	$(K3D_TF) apply -input=false -auto-approve $(K3D_TF_VARS) \
		-target=null_resource.registry -target=null_resource.cluster

# 2. The image, pushed to the k3d registry.
k3d-image: k3d-check-tools
	docker build -t $(K3D_IMAGE) .
	docker push $(K3D_IMAGE)

# 3. The chart (dependencies fetched by Helm) with the k3d values.
k3d-deploy: k3d-check-tools
	$(K3D_TF) apply -input=false -auto-approve $(K3D_TF_VARS)

k3d-up: k3d-cluster k3d-image k3d-deploy k3d-urls

k3d-urls:
	@$(K3D_TF) output

k3d-down: k3d-check-tools
	$(K3D_TF) destroy -input=false -auto-approve $(K3D_TF_VARS)

k3d-clean: k3d-down
	rm -rf .coelho/k3d
