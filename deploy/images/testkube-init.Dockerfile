# The image every worker pod starts with: its init container copies
# /testkube-init into a shared emptyDir, and each step container (of any
# image) runs that copy. Nothing else is in it, so the binary must be static.
#
# Build context: a folder holding a static `testkube-init` and
# `ca-certificates.crt` (the runner uploads artifacts to HTTPS URLs).
# deploy/images/build.sh prepares it and runs `podman build` / `docker build`.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY testkube-init /testkube-init
USER 65532:65532
ENTRYPOINT ["/testkube-init"]
