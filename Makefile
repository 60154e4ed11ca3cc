.PHONY: test bench bench-all lint cover example

test:
	go test -race -count=1 ./...

bench:
	go test -run '^$$' -bench . -benchmem -count 6 .

bench-all:
	./benchmarks/run.sh

lint:
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	test -z "$$(gofmt -l .)"

cover:
	go test -race -count=1 -coverprofile=cover.out ./...
	go tool cover -func=cover.out | tail -1

example:
	go run ./examples/orders
	go run ./examples/async-request-reply
	go run ./examples/tracing
