# cardharness in a container: Debian bookworm, the Debian packages (and the
# pinned Go tools) through `make deps`, the same step .ci/run runs, then the
# binary. The default command runs the built-in scenario suite.
#
# Base images (from Docker Hub, or a mirror of them given as build
# arguments; see the README, "In a container"):
#   GO_IMAGE   golang:1.26-bookworm   builds (Go 1.26, gcc, make, pkg-config)
#   BASE_IMAGE debian:bookworm-slim   runs
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# As root, make deps calls apt-get directly (no sudo).
RUN make deps && make build

FROM ${BASE_IMAGE}
# The run stage needs only the Debian half of make deps (apt-deps): the
# same package list, no Go.
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY Makefile /opt/cardharness/Makefile
RUN make -C /opt/cardharness apt-deps && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/cardharness /usr/local/bin/cardharness
WORKDIR /work
ENTRYPOINT ["cardharness"]
CMD ["run"]
