// Command vision-example is a small vision-gateway client with typed stubs (grpc-go): caption,
// detect, upload. Build it first (see README.md), then:
//
//	vision-example --target HOST:PORT --ca_file ca.pem --token_file token photo.png
//
// It captions the image (printing the text as it streams in), detects objects (boxes in pixels),
// uploads the image in chunks, and deletes the uploaded file again. Every call carries the bearer
// token; a RESOURCE_EXHAUSTED with a RetryInfo is retried after the delay the server asks for.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	visionv1 "vision-gateway/gen/vision/v1"
)

// callError is a failed RPC: its status (with the google.rpc details) and the request id the
// gateway logged it under.
type callError struct {
	status    *status.Status
	requestID string
}

func (e *callError) Error() string { return e.status.Message() }

// GRPCStatus lets status.Code and status.FromError see through the wrapper.
func (e *callError) GRPCStatus() *status.Status { return e.status }

// requestID is the x-request-id the gateway sent: in the response headers, or in the trailers
// when the call failed before any header.
func requestID(header, trailer metadata.MD) string {
	if ids := header.Get("x-request-id"); len(ids) > 0 {
		return ids[0]
	}
	if ids := trailer.Get("x-request-id"); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// failed wraps err, the error of a call on stream, with the call's x-request-id.
func failed(err error, stream grpc.ClientStream) error {
	e := &callError{status: status.Convert(err)}
	if stream != nil { // nil: the call did not start
		header, _ := stream.Header()
		e.requestID = requestID(header, stream.Trailer())
	}
	return e
}

var camelWord = regexp.MustCompile(`([a-z])([A-Z])`)

// codeName is the gRPC name of a code: codes.ResourceExhausted is "RESOURCE_EXHAUSTED".
func codeName(c codes.Code) string {
	return strings.ToUpper(camelWord.ReplaceAllString(c.String(), "${1}_${2}"))
}

// describe prints a failed call's code, message and google.rpc details to stderr, and returns
// the delay its RetryInfo asks for (0: none).
func describe(what string, e *callError) time.Duration {
	fmt.Fprintf(os.Stderr, "%s failed: %s: %s\n", what, codeName(e.status.Code()), e.status.Message())
	var retryDelay time.Duration
	for _, detail := range e.status.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			fmt.Fprintf(os.Stderr, "  ErrorInfo reason %s (domain %s)\n", d.Reason, d.Domain)
		case *errdetails.RetryInfo:
			retryDelay = d.RetryDelay.AsDuration()
			fmt.Fprintf(os.Stderr, "  RetryInfo retry_delay %s\n", retryDelay)
		case *errdetails.QuotaFailure:
			for _, v := range d.Violations {
				fmt.Fprintf(os.Stderr, "  QuotaFailure %s\n", v.Subject)
			}
		case *errdetails.BadRequest:
			for _, v := range d.FieldViolations {
				fmt.Fprintf(os.Stderr, "  BadRequest %s: %s\n", v.Field, v.Description)
			}
		}
	}
	if e.requestID != "" {
		fmt.Fprintf(os.Stderr, "  request id %s\n", e.requestID)
	}
	return retryDelay
}

// withRetries runs call; on RESOURCE_EXHAUSTED with a RetryInfo it waits that long and tries
// again. A call that already printed results (started() true) is not retried: it would print
// them twice.
func withRetries(what string, maxAttempts int, started func() bool, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		var e *callError
		if err == nil || !errors.As(err, &e) {
			return err
		}
		delay := describe(what, e)
		if e.status.Code() != codes.ResourceExhausted || delay <= 0 || attempt >= maxAttempts ||
			started() {
			return err
		}
		fmt.Printf("retrying %s in %s (attempt %d of %d)\n", what, delay, attempt+1, maxAttempts)
		time.Sleep(delay)
	}
}

// caption prints the caption piece by piece as the server streams it.
func caption(client visionv1.VisionServiceClient, image []byte, maxAttempts int) error {
	pieces := 0
	return withRetries("caption", maxAttempts, func() bool { return pieces > 0 }, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stream, err := client.Caption(ctx, &visionv1.CaptionRequest{
			Images: []*visionv1.Image{{Source: &visionv1.Image_Content{Content: image}}},
		})
		if err != nil {
			return failed(err, stream)
		}
		var last *visionv1.CaptionResponse
		for {
			response, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return failed(err, stream)
			}
			fmt.Print(response.GetText())
			pieces++
			last = response
		}
		fmt.Printf("\n(caption: %d pieces, finish_reason %s, %d tokens)\n",
			pieces, last.GetFinishReason(), last.GetUsage().GetTotalTokens())
		return nil
	})
}

// detect prints each detected object's box in pixels of the upright image.
func detect(client visionv1.VisionServiceClient, image []byte, maxAttempts int) error {
	received := 0
	return withRetries("detect", maxAttempts, func() bool { return received > 0 }, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stream, err := client.Detect(ctx, &visionv1.DetectRequest{
			Image: &visionv1.Image{Source: &visionv1.Image_Content{Content: image}},
		})
		if err != nil {
			return failed(err, stream)
		}
		for {
			response, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return failed(err, stream)
			}
			received++
			switch event := response.Event.(type) {
			case *visionv1.DetectResponse_ImageInfo:
				info := event.ImageInfo
				fmt.Printf("image: %dx%d %s\n", info.Width, info.Height, info.MimeType)
			case *visionv1.DetectResponse_Detection:
				d, box := event.Detection, event.Detection.GetBox()
				fmt.Printf("object %d %s: x %d-%d, y %d-%d px\n",
					d.Index, d.Label, box.GetXMin(), box.GetXMax(), box.GetYMin(), box.GetYMax())
			case *visionv1.DetectResponse_Summary:
				fmt.Printf("summary: %d objects, finish_reason %s\n",
					event.Summary.Count, event.Summary.FinishReason)
			}
		}
	})
}

// upload sends the file as a header then chunks, read from disk as they are sent.
func upload(client visionv1.VisionServiceClient, path string, chunkSize, maxAttempts int) (*visionv1.File, error) {
	digest := sha256.New()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := io.Copy(digest, f)
	if err != nil {
		return nil, err
	}
	var file *visionv1.File
	err = withRetries("upload", maxAttempts, func() bool { return false }, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		stream, err := client.Upload(ctx)
		if err != nil {
			return failed(err, stream)
		}
		header := &visionv1.UploadHeader{
			DisplayName: filepath.Base(path),
			SizeBytes:   size,
			Sha256:      hex.EncodeToString(digest.Sum(nil)),
		}
		// Send returns io.EOF when the server has ended the call; CloseAndRecv then has its status.
		err = stream.Send(&visionv1.UploadRequest{Part: &visionv1.UploadRequest_Header{Header: header}})
		chunks := 0
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return serr
		}
		buffer := make([]byte, chunkSize)
		for err == nil {
			n, rerr := io.ReadFull(f, buffer)
			if n > 0 {
				chunks++
				err = stream.Send(&visionv1.UploadRequest{
					Part: &visionv1.UploadRequest_Chunk{Chunk: buffer[:n]}})
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			} else if rerr != nil {
				return rerr
			}
		}
		if err != nil && err != io.EOF {
			return failed(err, stream)
		}
		file, err = stream.CloseAndRecv()
		if err != nil {
			return failed(err, stream)
		}
		fmt.Printf("uploaded %s (%d bytes in %d chunks, %dx%d px, sha256 %s, %s)\n",
			file.Name, file.SizeBytes, chunks, file.Width, file.Height, file.Sha256, file.State)
		return nil
	})
	return file, err
}

func dial(target, caFile, tokenFile string, plaintext bool) (*grpc.ClientConn, error) {
	if plaintext {
		return grpc.Dial(target, grpc.WithInsecure())
	}
	transport := credentials.NewTLS(&tls.Config{}) // the system's roots
	if caFile != "" {
		var err error
		if transport, err = credentials.NewClientTLSFromFile(caFile, ""); err != nil {
			return nil, err
		}
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	token := os.Getenv("VISION_TOKEN")
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(data))
	}
	if token != "" {
		// Sends "authorization: Bearer <token>" on every call (only over TLS).
		options = append(options, grpc.WithPerRPCCredentials(oauth.TokenSource{
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}),
		}))
	}
	return grpc.Dial(target, options...)
}

func run() int {
	target := flag.String("target", "localhost:50051", "host:port of the gateway")
	caFile := flag.String("ca_file", "", "PEM CA bundle to verify the server (default: system roots)")
	tokenFile := flag.String("token_file", "", "file holding the bearer token (else $VISION_TOKEN)")
	plaintext := flag.Bool("plaintext", false, "no TLS (local gateway)")
	chunkSize := flag.Int("chunk_size", 1<<20, "upload chunk size, bytes")
	maxAttempts := flag.Int("max_attempts", 3, "attempts per call")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: vision-example [flags] IMAGE")
		flag.PrintDefaults()
		return 2
	}
	path := flag.Arg(0)
	image, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn, err := dial(*target, *caFile, *tokenFile, *plaintext)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	client := visionv1.NewVisionServiceClient(conn)

	err = func() error {
		fmt.Println("== caption")
		if err := caption(client, image, *maxAttempts); err != nil {
			return err
		}
		fmt.Println("== detect")
		if err := detect(client, image, *maxAttempts); err != nil {
			return err
		}
		fmt.Println("== upload")
		file, err := upload(client, path, *chunkSize, *maxAttempts)
		if err != nil {
			return err
		}
		err = withRetries("delete", *maxAttempts, func() bool { return false }, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var header, trailer metadata.MD
			_, err := client.DeleteFile(ctx, &visionv1.DeleteFileRequest{Name: file.Name},
				grpc.Header(&header), grpc.Trailer(&trailer))
			if err != nil {
				return &callError{status: status.Convert(err), requestID: requestID(header, trailer)}
			}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Printf("deleted %s\n", file.Name)
		return nil
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %s\n", codeName(status.Code(err)))
		return 1
	}
	return 0
}

func main() { os.Exit(run()) }
