// goclient sends beacon requests with Go's net/http (stdlib only) and prints, as one JSON
// object, what it sent and what it got back, for tests/clients/test_clients_go.py.
//
//	goclient -track http://127.0.0.1:8080/track -run abc123
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"time"
)

// result is one request's outcome.
type result struct {
	Status      int         `json:"status"`
	ContentType string      `json:"content_type"`
	BodyLen     int         `json:"body_len"`
	Sent        [][2]string `json:"sent"` // the params, in the order they went on the wire
	Err         string      `json:"error,omitempty"`
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(req *http.Request, sent [][2]string) result {
	resp, err := client.Do(req)
	if err != nil {
		return result{Err: err.Error(), Sent: sent}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := result{resp.StatusCode, resp.Header.Get("Content-Type"), len(body), sent, ""}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// values builds url.Values from pairs; Encode() writes them sorted by name.
func values(pairs [][2]string) (url.Values, [][2]string) {
	v := url.Values{}
	for _, p := range pairs {
		v.Add(p[0], p[1])
	}
	var sorted [][2]string
	for _, kv := range strings.Split(v.Encode(), "&") {
		k, val, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		val, _ = url.QueryUnescape(val)
		sorted = append(sorted, [2]string{k, val})
	}
	return v, sorted
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func pixel(track, run string) result {
	v, sent := values([][2]string{
		{"ev", "pixel"}, {"r", run}, {"q", "ελληνικά 😀"}, {"sym", "&=+%#?/ x"}, {"ö k", "ü"},
	})
	req, err := http.NewRequest("GET", track+"?"+v.Encode(), nil)
	must(err)
	return do(req, sent)
}

func form(track, run string) result {
	v, sent := values([][2]string{{"ev", "form"}, {"r", run}, {"t", "a"}, {"t", "b c"}})
	req, err := http.NewRequest("POST", track, strings.NewReader(v.Encode()))
	must(err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(req, sent)
}

func multipartForm(track, run string) result {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	sent := [][2]string{{"ev", "multipart"}, {"r", run}, {"tag", "a"}, {"tag", "b ελ"}}
	for _, p := range sent {
		must(w.WriteField(p[0], p[1]))
	}
	file, err := w.CreateFormFile("upload", "report.csv") // skipped by the server
	must(err)
	_, err = file.Write([]byte("a,b\n1,2\n"))
	must(err)
	must(w.WriteField("after", "1"))
	sent = append(sent, [2]string{"after", "1"})
	must(w.Close())
	req, err := http.NewRequest("POST", track, &body)
	must(err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return do(req, sent)
}

func gzipped(track, run string) result {
	v, sent := values([][2]string{{"ev", "gzip"}, {"r", run}, {"q", "ζ"}})
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	_, err := zw.Write([]byte(v.Encode()))
	must(err)
	must(zw.Close())
	req, err := http.NewRequest("POST", track, &body)
	must(err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Content-Encoding", "gzip")
	return do(req, sent)
}

// keepAlive sends n pixels through a fresh transport and reports whether each reused the
// connection before it (httptrace GotConn).
func keepAlive(track, run string, n int) map[string]any {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	var statuses []int
	var reused []bool
	for i := 0; i < n; i++ {
		trace := &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}
		q := url.Values{"ev": {"ka"}, "r": {run}, "n": {fmt.Sprint(i)}}
		req, err := http.NewRequest("GET", track+"?"+q.Encode(), nil)
		must(err)
		resp, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		_, err = io.Copy(io.Discard, resp.Body) // read to the end: the connection goes back
		must(err)
		must(resp.Body.Close())
		statuses = append(statuses, resp.StatusCode)
	}
	return map[string]any{"statuses": statuses, "reused": reused}
}

func main() {
	track := flag.String("track", "", "beacon's /track URL")
	run := flag.String("run", "", "run id put in every request")
	flag.Parse()
	out := map[string]any{
		"pixel":     pixel(*track, *run),
		"form":      form(*track, *run),
		"multipart": multipartForm(*track, *run),
		"gzip":      gzipped(*track, *run),
		"keepalive": keepAlive(*track, *run, 4),
	}
	must(json.NewEncoder(os.Stdout).Encode(out))
}
