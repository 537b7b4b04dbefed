// Command ferretdb runs FerretDB 1.24 (a MongoDB wire-protocol server on SQLite) for
// Anonymo's embedded database and tests.
//
// Why a wrapper instead of `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`:
// that binary panics at start-up ("Invalid build/version/version.txt") because the module
// proxy does not ship FerretDB's generated version files. The embeddable package skips that
// check when it is not the main module, and also never writes state files into the working
// directory, binds no debug port and sends no telemetry, so several instances can run at once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on (port 0 picks a free port; empty: no TCP)")
	listenUnix := flag.String("listen-unix", "", "Unix domain socket path to listen on (empty: none)")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI of the data directory (must end with /)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb: bad --log-level:", err)
		os.Exit(2)
	}
	// Database files and the socket are readable by this user only (0600; folders 0700): the
	// embedded database has no authentication, so file permissions are its access control.
	syscall.Umask(0o077)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen, Unix: *listenUnix},
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
		Logger:    logger,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()

	// The parent process reads this line to learn the URI (and the port when 0 was asked for).
	fmt.Println("READY " + f.MongoDBURI())

	<-done
}
