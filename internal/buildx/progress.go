package buildx

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Report is what a build's progress stream said.
type Report struct {
	// Steps are the build steps, the Dockerfile instructions with a step
	// counter such as "[linux/amd64 2/3] RUN ...", in the order they
	// started. Steps that never started (after a failure) are not in it.
	Steps []Step
	// Warnings are the build warnings, such as the Dockerfile linter's,
	// deduplicated, in the order they first came.
	Warnings []Warning
	// Failed is the first step that ended with an error (one that was only
	// canceled because another failed comes after any that really failed),
	// nil if none. It points into Steps.
	Failed *Step
}

// Step is one build step: a vertex of the build graph whose name is a
// Dockerfile instruction with a step counter.
type Step struct {
	// Digest is the vertex digest, such as "sha256:...".
	Digest string
	// Name is the vertex name, e.g. "[linux/amd64 2/3] RUN go build ./...".
	Name string
	// Cached is true when the step came from the build cache.
	Cached bool
	// Error is the error the step ended with, "" if none.
	Error string
	// Logs are the step's last output lines (at most 20, stdout and stderr
	// in the order they came), without trailing newlines.
	Logs []string
	// Duration is completed - started (summed over the runs if BuildKit
	// started the vertex more than once), 0 if cached or not completed.
	Duration time.Duration
}

// Warning is a build warning, such as a Dockerfile lint finding.
type Warning struct {
	// Short is the one-line message, e.g. "FromAsCasing: 'as' and 'FROM'
	// keywords' casing do not match (line 1)".
	Short string
	// Detail are the longer explanation's lines.
	Detail []string
	// URL points to the documentation of the warning.
	URL string
	// File is the source file, e.g. "Dockerfile".
	File string
	// Line is the 1-based start line of the first range, 0 if none.
	Line int
}

// Cached counts the build steps that came from the cache.
func (r Report) Cached() int {
	n := 0
	for _, s := range r.Steps {
		if s.Cached {
			n++
		}
	}
	return n
}

// Total counts the build steps.
func (r Report) Total() int { return len(r.Steps) }

// maxStepLogs is how many of a step's last output lines a Step keeps.
const maxStepLogs = 20

// progressStepRE matches the names of build steps: a bracket that ends
// with a step counter, e.g. "[2/3] ", "[stage-1 1/2] ",
// "[linux/amd64 build 2/3] ".
var progressStepRE = regexp.MustCompile(`^\[(?:[^\]]*\s)?\d+/\d+\]\s`)

// The rawjson stream: one SolveStatus of
// github.com/moby/buildkit/client per line, decoded into these structs.
// []byte fields carry base64 in JSON.
type progressStatus struct {
	Vertexes []*progressVertex      `json:"vertexes"`
	Statuses []*progressVertexStat  `json:"statuses"`
	Logs     []*progressLog         `json:"logs"`
	Warnings []*progressWarningJSON `json:"warnings"`
}

type progressVertex struct {
	Digest    string     `json:"digest"`
	Name      string     `json:"name"`
	Started   *time.Time `json:"started"`
	Completed *time.Time `json:"completed"`
	Cached    bool       `json:"cached"`
	Error     string     `json:"error"`
}

type progressVertexStat struct {
	ID        string     `json:"id"`
	Vertex    string     `json:"vertex"`
	Total     int64      `json:"total"`
	Current   int64      `json:"current"`
	Started   *time.Time `json:"started"`
	Completed *time.Time `json:"completed"`
}

type progressLog struct {
	Vertex string `json:"vertex"`
	Stream int    `json:"stream"`
	Data   []byte `json:"data"`
}

type progressWarningJSON struct {
	Vertex     string   `json:"vertex"`
	Short      []byte   `json:"short"`
	Detail     [][]byte `json:"detail"`
	URL        string   `json:"url"`
	SourceInfo *struct {
		Filename string `json:"filename"`
	} `json:"sourceInfo"`
	Range []*struct {
		Start *struct {
			Line int `json:"line"`
		} `json:"start"`
	} `json:"range"`
}

// progressInterval is one run of a vertex; stop is nil while it runs.
type progressInterval struct {
	start time.Time
	stop  *time.Time
}

// progressVtx is what the reader knows of one vertex.
type progressVtx struct {
	digest string
	name   string
	cached bool
	err    string
	// runs by start time; a vertex can be started more than once.
	runs []progressInterval
	// index is the #n of the readable log, 0 until its header is printed.
	index int
	// startSeq orders vertexes by when they started, 0 if never.
	startSeq int
	// errSeq orders errors by when they came, 0 if none.
	errSeq int
	// doneFor is the start of the run whose completion was printed or is
	// pending; donePrinted says whether it is printed already.
	doneFor     time.Time
	donePending bool
	donePrinted bool
	// partial holds an unterminated output line per stream.
	partial map[int][]byte
	logs    []string
	// statusDone holds the statuses (id and start) printed as done.
	statusDone map[string]bool
}

func (v *progressVtx) started() bool { return len(v.runs) > 0 }

// completed reports whether the latest run has stopped.
func (v *progressVtx) completed() bool {
	return len(v.runs) > 0 && v.runs[len(v.runs)-1].stop != nil
}

// duration sums the runs, overlapping ones merged.
func (v *progressVtx) duration() time.Duration {
	var d time.Duration
	var end time.Time
	for _, r := range v.runs { // sorted by start
		if r.stop == nil {
			continue
		}
		start, stop := r.start, *r.stop
		if start.Before(end) {
			start = end
		}
		if stop.After(start) {
			d += stop.Sub(start)
			end = stop
		}
	}
	return d
}

// progressReader turns the stream into the readable log and the report.
type progressReader struct {
	w        io.Writer
	werr     error
	wrote    bool
	vertexes map[string]*progressVtx
	order    []*progressVtx // by startSeq
	seq      int
	next     int // the last #n given
	// pending are completed vertexes whose final line waits until another
	// vertex prints: BuildKit often completes a vertex and starts it again
	// at once, and the log should say DONE only once.
	pending  []*progressVtx
	warnings []Warning
	warnSeen map[string]bool
	// pushed, when set, hears of the first manifest pushed (image:tag@digest).
	pushed     func(ref string)
	pushedSeen bool
}

// ReadProgress consumes a `buildx build --progress=rawjson` stream (one
// BuildKit SolveStatus as JSON per line) until EOF. It writes a readable
// log to w while reading, in the spirit of --progress=plain: "#n NAME" when
// a vertex starts, its output lines as "#n LINE", its warnings as
// "#n WARN: SHORT", and "#n CACHED", "#n DONE 1.2s" or "#n ERROR: ..." when
// it completes. Each line that is not such JSON (buildx prints plain
// text such as "ERROR: ..." to the same stream) is copied to w as is. It
// returns what the stream said; the error is a read error, or the first
// write error on w (reading then goes on, so the report is whole).
func ReadProgress(r io.Reader, w io.Writer) (Report, error) {
	return readProgress(r, w, nil)
}

// readProgress is ReadProgress that also calls pushed, once, with the
// reference of the first manifest the build pushed, as soon as the stream
// says it is done: from then on the image can be read from the registry
// while buildx pushes the other tags.
func readProgress(r io.Reader, w io.Writer, pushed func(ref string)) (Report, error) {
	if w == nil {
		w = io.Discard
	}
	p := &progressReader{
		w:        w,
		vertexes: map[string]*progressVtx{},
		warnSeen: map[string]bool{},
		pushed:   pushed,
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var readErr error
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			p.line(line)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("reading progress: %w", err)
			}
			break
		}
	}
	p.finish()
	rep := p.report()
	if readErr != nil {
		return rep, readErr
	}
	if p.werr != nil {
		return rep, fmt.Errorf("writing progress log: %w", p.werr)
	}
	return rep, nil
}

// printf writes one line of the readable log; after a write error it
// writes nothing more.
func (p *progressReader) printf(format string, args ...any) {
	p.wrote = true
	if p.werr != nil {
		return
	}
	_, p.werr = fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progressReader) line(raw []byte) {
	text := bytes.TrimRight(raw, "\r\n")
	var st progressStatus
	if trimmed := bytes.TrimSpace(text); len(trimmed) == 0 || trimmed[0] != '{' ||
		json.Unmarshal(trimmed, &st) != nil ||
		(st.Vertexes == nil && st.Statuses == nil && st.Logs == nil && st.Warnings == nil &&
			!bytes.Equal(trimmed, []byte("{}"))) {
		p.plain(raw)
		return
	}
	// Merge all vertex updates first: a line can complete a vertex and start
	// it again, which leaves it running. Then print, in the line's order.
	var touched []*progressVtx
	for _, v := range st.Vertexes {
		if v == nil || v.Digest == "" {
			continue
		}
		if vx := p.vertex(v); !slices.Contains(touched, vx) {
			touched = append(touched, vx)
		}
	}
	for _, vx := range touched {
		if vx.started() {
			p.header(vx)
		}
		p.settle(vx)
	}
	for _, s := range st.Statuses {
		if s != nil {
			p.status(s)
		}
	}
	for _, l := range st.Logs {
		if l != nil && l.Vertex != "" {
			p.log(l)
		}
	}
	for _, wj := range st.Warnings {
		if wj != nil {
			p.warning(wj)
		}
	}
}

// plain copies a line that is not progress JSON to the log.
func (p *progressReader) plain(raw []byte) {
	p.flushPending(nil)
	p.wrote = true
	if p.werr != nil {
		return
	}
	_, p.werr = p.w.Write(raw)
	if p.werr == nil && !bytes.HasSuffix(raw, []byte("\n")) {
		_, p.werr = io.WriteString(p.w, "\n")
	}
}

// vertex merges an update into what is known of its vertex.
func (p *progressReader) vertex(v *progressVertex) *progressVtx {
	vx := p.vertexes[v.Digest]
	if vx == nil {
		vx = &progressVtx{digest: v.Digest}
		p.vertexes[v.Digest] = vx
	}
	if v.Name != "" {
		vx.name = v.Name
	}
	start := v.Started
	if start == nil {
		start = v.Completed
	}
	if start == nil && !v.Cached && v.Error == "" {
		// An announcement, or a copy of an earlier state: nothing new.
		return vx
	}
	if start == nil {
		// Cached or failed without times: it ran, at the time zero.
		t := time.Time{}
		if len(vx.runs) > 0 {
			t = vx.runs[len(vx.runs)-1].start
		}
		start = &t
	}
	stop := v.Completed
	if stop == nil && (v.Cached || v.Error != "") {
		stop = start
	}
	i, found := slices.BinarySearchFunc(vx.runs, *start, func(r progressInterval, t time.Time) int {
		return r.start.Compare(t)
	})
	switch {
	case !found:
		vx.runs = slices.Insert(vx.runs, i, progressInterval{start: *start, stop: stop})
	case stop != nil:
		vx.runs[i].stop = stop
	}
	if i == len(vx.runs)-1 {
		// The latest run decides the state; a new run starts afresh.
		if !found {
			vx.cached, vx.err = false, ""
		}
		vx.cached = vx.cached || v.Cached
		if v.Error != "" {
			vx.err = v.Error
		}
	}
	if vx.err != "" && vx.errSeq == 0 {
		p.seq++
		vx.errSeq = p.seq
	}
	if vx.startSeq == 0 {
		p.seq++
		vx.startSeq = p.seq
		p.order = append(p.order, vx)
	}
	return vx
}

// header prints "#n NAME" the first time a vertex shows in the log, and
// flushes the pending completions of other vertexes first.
func (p *progressReader) header(vx *progressVtx) {
	p.flushPending(vx)
	p.ensureHeader(vx)
}

// ensureHeader prints "#n NAME" if the vertex has no #n yet.
func (p *progressReader) ensureHeader(vx *progressVtx) {
	if vx.index != 0 {
		return
	}
	if p.wrote {
		p.printf("")
	}
	p.next++
	vx.index = p.next
	name := vx.name
	if name == "" {
		name = vx.digest
	}
	p.printf("#%d %s", vx.index, name)
}

// settle notes a vertex whose state changed: a completed run is printed
// once another vertex prints (or the stream ends); a vertex started again
// before that is still running.
func (p *progressReader) settle(vx *progressVtx) {
	if !vx.completed() {
		if vx.donePending {
			vx.donePending = false
			p.pending = slices.DeleteFunc(p.pending, func(o *progressVtx) bool { return o == vx })
		}
		return
	}
	last := vx.runs[len(vx.runs)-1].start
	if vx.donePending || (vx.donePrinted && vx.doneFor.Equal(last)) {
		if vx.donePending {
			vx.doneFor = last
		}
		return
	}
	p.header(vx)
	vx.doneFor = last
	vx.donePending = true
	vx.donePrinted = false
	p.pending = append(p.pending, vx)
}

// flushPending prints the pending completions of every vertex but except.
func (p *progressReader) flushPending(except *progressVtx) {
	var keep []*progressVtx
	for _, vx := range p.pending {
		if vx == except {
			keep = append(keep, vx)
			continue
		}
		p.done(vx)
	}
	p.pending = keep
}

// done prints how a vertex completed.
func (p *progressReader) done(vx *progressVtx) {
	vx.donePending = false
	vx.donePrinted = true
	p.ensureHeader(vx)
	p.flushPartial(vx)
	switch {
	case vx.err != "" && strings.HasSuffix(vx.err, "context canceled"):
		p.printf("#%d CANCELED", vx.index)
	case vx.err != "":
		p.printf("#%d ERROR: %s", vx.index, vx.err)
	case vx.cached:
		p.printf("#%d CACHED", vx.index)
	default:
		p.printf("#%d DONE %.1fs", vx.index, vx.duration().Seconds())
	}
}

// known returns the vertex of digest, creating an unnamed one.
func (p *progressReader) known(digest string) *progressVtx {
	vx := p.vertexes[digest]
	if vx == nil {
		vx = &progressVtx{digest: digest}
		p.vertexes[digest] = vx
	}
	return vx
}

// status prints a vertex's status (such as "transferring context:") once
// it is done.
func (p *progressReader) status(s *progressVertexStat) {
	if s.Vertex == "" || s.Completed == nil {
		return
	}
	vx := p.known(s.Vertex)
	key := s.ID
	if s.Started != nil {
		key += "\x00" + s.Started.String()
	}
	if vx.statusDone[key] {
		return
	}
	if vx.statusDone == nil {
		vx.statusDone = map[string]bool{}
	}
	vx.statusDone[key] = true
	if ref, ok := strings.CutPrefix(s.ID, "pushing manifest for "); ok && p.pushed != nil && !p.pushedSeen {
		p.pushedSeen = true
		p.pushed(strings.TrimSpace(ref))
	}
	p.header(vx)
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", vx.index, s.ID)
	switch {
	case s.Total != 0:
		fmt.Fprintf(&b, " %s / %s", progressBytes(s.Current), progressBytes(s.Total))
	case s.Current != 0:
		fmt.Fprintf(&b, " %s", progressBytes(s.Current))
	}
	if s.Started != nil {
		if d := s.Completed.Sub(*s.Started).Seconds(); d > 0.01 {
			fmt.Fprintf(&b, " %.1fs", d)
		}
	}
	b.WriteString(" done")
	p.printf("%s", b.String())
}

// progressBytes formats a size like BuildKit's plain progress: "116B",
// "2.52MB".
func progressBytes(n int64) string {
	if n < 1000 && n > -1000 {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	u := ""
	for _, u = range units {
		f /= 1000
		if f < 1000 && f > -1000 {
			break
		}
	}
	return fmt.Sprintf("%.2f%s", f, u)
}

// log prints a vertex's output lines and keeps the last ones. A line split
// over several log entries is joined; a line rewritten with \r shows its
// last state.
func (p *progressReader) log(l *progressLog) {
	vx := p.known(l.Vertex)
	if vx.partial == nil {
		vx.partial = map[int][]byte{}
	}
	// partial holds copies of ours, so appending to it is safe.
	prev := vx.partial[l.Stream]
	buf := append(prev, l.Data...)
	start, from := 0, len(prev)
	for {
		i := bytes.IndexByte(buf[from:], '\n')
		if i < 0 {
			break
		}
		p.header(vx)
		p.logLine(vx, buf[start:from+i])
		start, from = from+i+1, from+i+1
	}
	switch {
	case start == len(buf):
		delete(vx.partial, l.Stream)
	case start > 0:
		vx.partial[l.Stream] = append([]byte(nil), buf[start:]...)
	default:
		vx.partial[l.Stream] = buf
	}
}

// flushPartial prints the unterminated output lines of a vertex, whose
// header is printed.
func (p *progressReader) flushPartial(vx *progressVtx) {
	if len(vx.partial) == 0 {
		return
	}
	streams := make([]int, 0, len(vx.partial))
	for s := range vx.partial {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	for _, s := range streams {
		data := vx.partial[s]
		delete(vx.partial, s)
		p.logLine(vx, data)
	}
}

func (p *progressReader) logLine(vx *progressVtx, b []byte) {
	b = bytes.TrimRight(b, "\r")
	if i := bytes.LastIndexByte(b, '\r'); i >= 0 {
		b = b[i+1:]
	}
	line := string(b)
	p.printf("#%d %s", vx.index, line)
	vx.logs = append(vx.logs, line)
	if len(vx.logs) > maxStepLogs {
		vx.logs = slices.Clone(vx.logs[len(vx.logs)-maxStepLogs:])
	}
}

// warning keeps a warning the first time it comes and prints it.
func (p *progressReader) warning(wj *progressWarningJSON) {
	w := Warning{Short: string(wj.Short), URL: wj.URL}
	for _, d := range wj.Detail {
		w.Detail = append(w.Detail, string(d))
	}
	if wj.SourceInfo != nil {
		w.File = wj.SourceInfo.Filename
	}
	if len(wj.Range) > 0 && wj.Range[0] != nil && wj.Range[0].Start != nil {
		w.Line = wj.Range[0].Start.Line
	}
	key := fmt.Sprintf("%q %q %q %d %q", w.Short, w.URL, w.File, w.Line, w.Detail)
	if p.warnSeen[key] {
		return
	}
	p.warnSeen[key] = true
	p.warnings = append(p.warnings, w)
	short := strings.ReplaceAll(strings.TrimRight(w.Short, "\r\n"), "\n", " ")
	if wj.Vertex == "" {
		p.flushPending(nil)
		p.printf("WARN: %s", short)
		return
	}
	vx := p.known(wj.Vertex)
	p.header(vx)
	p.printf("#%d WARN: %s", vx.index, short)
}

// finish prints what is still open at the end of the stream.
func (p *progressReader) finish() {
	var open []*progressVtx
	for _, vx := range p.vertexes {
		if !vx.donePending && len(vx.partial) > 0 {
			open = append(open, vx)
		}
	}
	slices.SortFunc(open, func(a, b *progressVtx) int {
		if a.index != b.index {
			return a.index - b.index
		}
		return strings.Compare(a.digest, b.digest)
	})
	for _, vx := range open {
		p.header(vx)
		p.flushPartial(vx)
	}
	p.flushPending(nil)
}

// report collects the build steps.
func (p *progressReader) report() Report {
	rep := Report{Warnings: p.warnings}
	failed, failedSeq, canceled := -1, 0, true
	for _, vx := range p.order {
		if !progressStepRE.MatchString(vx.name) {
			continue
		}
		s := Step{
			Digest: vx.digest,
			Name:   vx.name,
			Cached: vx.cached,
			Error:  vx.err,
			Logs:   slices.Clone(vx.logs),
		}
		if !vx.cached && vx.completed() {
			s.Duration = vx.duration()
		}
		rep.Steps = append(rep.Steps, s)
		if vx.err != "" {
			c := strings.HasSuffix(vx.err, "context canceled")
			if failed < 0 || (canceled && !c) || (canceled == c && vx.errSeq < failedSeq) {
				failed, failedSeq, canceled = len(rep.Steps)-1, vx.errSeq, c
			}
		}
	}
	if failed >= 0 {
		rep.Failed = &rep.Steps[failed]
	}
	return rep
}
