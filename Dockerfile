# Stagecoach: a static, non-root image. SQLite is pure Go (modernc.org/sqlite), so no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/stagecoach ./cmd/stagecoach

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stagecoach /usr/local/bin/stagecoach
USER nonroot:nonroot
WORKDIR /var/lib/stagecoach
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/stagecoach"]
CMD ["serve"]
