# Multi-stage build: static sidpin and chatnode binaries on a small non-root runtime image.
#   docker build -t sidpin .
#   docker run -p 3200:3200 -v $PWD/my.yaml:/etc/sidpin/sidpin.yaml:ro sidpin
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/sidpin ./cmd/chatnode

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidpin /out/chatnode /usr/local/bin/
# The config is read from a mounted file (no default is baked in): mount yours at this path, with
# `listen: 0.0.0.0:3200` so the port is reachable from outside the container.
USER nonroot:nonroot
EXPOSE 3200 3201
ENTRYPOINT ["/usr/local/bin/sidpin"]
CMD ["-config", "/etc/sidpin/sidpin.yaml"]
