# svcdisc's image: a static binary on distroless, non-root. It cannot be
# built on the development machine (no container runtime there); CI that
# has one runs: docker build -t svcdisc .
FROM golang:1.27.3 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/svcdisc ./cmd/svcdisc

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/svcdisc /svcdisc
USER 65532:65532
ENTRYPOINT ["/svcdisc"]
