# The in-cluster agent (deploy/kustomize/base/agent-deployment.yaml runs it
# as user 65532 with a read-only root and its store on a volume at
# /var/lib/testkube).
#
# Build context: a folder holding a static `testkube-agent` and
# `ca-certificates.crt` (S3-compatible artifact stores over HTTPS).
# deploy/images/build.sh prepares it and runs `podman build` / `docker build`.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY testkube-agent /testkube-agent
USER 65532:65532
ENTRYPOINT ["/testkube-agent"]
