package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/registry"
)

// Build is what the summary and the outputs say about a build.
type Build struct {
	// Image is the first image, without tag.
	Image  string
	Result buildx.Result
	// ReadBack is the pushed image as the registry serves it.
	ReadBack    registry.Image
	CacheFrom   []string
	CacheTo     []string
	ForceReason string
	Err         error
}

// BuildOutputs are the outputs of a successful build.
func BuildOutputs(b Build) []Output {
	md := b.Result.Metadata
	imageID := md.ConfigDigest
	if imageID == "" {
		imageID = md.Digest
	}
	image := ""
	if md.Digest != "" && b.Image != "" {
		image = b.Image + "@" + md.Digest
	}
	metadata := string(md.Raw)
	if metadata == "" {
		metadata = "{}"
	}
	return []Output{
		{"digest", md.Digest},
		{"imageid", imageID},
		{"image", image},
		{"metadata", metadata},
		{"build-time", fmt.Sprintf("%.3f", b.Result.Duration.Seconds())},
	}
}

// BuildSummary renders the build's part of the step summary.
func BuildSummary(b Build) string {
	var s strings.Builder
	rep := b.Result.Report
	s.WriteString("\n#### Build\n\n| | |\n| --- | --- |\n")
	row := func(k, v string) { fmt.Fprintf(&s, "| %s | %s |\n", k, cell(v)) }
	if b.Err != nil {
		row("Result", "failed")
	} else {
		row("Result", "built")
	}
	if d := b.Result.Metadata.Digest; d != "" {
		row("Digest", "`"+d+"`")
	}
	row("Build time", fmt.Sprintf("%.1f s", b.Result.Duration.Seconds()))
	row("Steps from cache", fmt.Sprintf("%d of %d", rep.Cached(), rep.Total()))
	if b.ForceReason != "" {
		row("Cache", "force-rebuild ("+b.ForceReason+"): nothing imported, caches exported again")
	}
	if len(b.CacheFrom) > 0 {
		row("Cache from", "`"+strings.Join(b.CacheFrom, "` then `")+"`")
	}
	if len(b.CacheTo) > 0 {
		row("Cache to", "`"+strings.Join(b.CacheTo, "`, `")+"`")
	}
	if ps := b.ReadBack.Platforms; len(ps) > 0 {
		s.WriteString("\n| Platform | Digest | Compressed size |\n| --- | --- | --- |\n")
		for _, p := range ps[:min(len(ps), maxRows)] {
			fmt.Fprintf(&s, "| %s | `%s` | %s |\n", cell(p.Platform), p.Digest, registry.HumanSize(p.Size))
		}
		s.WriteString(more(len(ps), "platforms"))
		if n := b.ReadBack.Attestations; n > 0 {
			fmt.Fprintf(&s, "\n%d attestation manifest(s) attached.\n", n)
		}
	}
	if len(rep.Warnings) > 0 {
		s.WriteString("\n**Build warnings**\n\n")
		for _, w := range rep.Warnings[:min(len(rep.Warnings), maxRows)] {
			where := ""
			if w.File != "" {
				where = fmt.Sprintf(" (%s:%d)", w.File, w.Line)
			}
			fmt.Fprintf(&s, "- %s%s\n", clip(w.Short), clip(where))
		}
		s.WriteString(more(len(rep.Warnings), "build warnings"))
	}
	if b.Err != nil {
		s.WriteString("\n**The build failed**\n\n```\n")
		s.WriteString(strings.ReplaceAll(tailBytes(b.Err.Error(), maxErrorBlock), "```", "'''"))
		s.WriteString("\n```\n")
	}
	return s.String()
}

// maxErrorBlock is the most of a failed build's error the summary shows:
// its end, where the failing step's last lines are.
const maxErrorBlock = 16 << 10

// tailBytes keeps the last max bytes of s (from a line start when there is
// one), saying how much it left out.
func tailBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := len(s) - max
	if i := strings.IndexByte(s[cut:], '\n'); i >= 0 {
		cut += i + 1
	}
	return fmt.Sprintf("(%d bytes left out)\n", cut) + s[cut:]
}

// Command prints a command one argument per line, as a shell would take it.
func Command(w io.Writer, bin string, args []string) {
	fmt.Fprintf(w, "%s", bin)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") && !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") && i+1 != len(args)-1 {
			fmt.Fprintf(w, " \\\n  %s %s", a, quote(args[i+1]))
			i++
			continue
		}
		fmt.Fprintf(w, " \\\n  %s", quote(a))
	}
	fmt.Fprintln(w)
}

func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// MergeSummary renders the merged index of a distributed build.
func MergeSummary(digest string, merged []string, img registry.Image) string {
	var s strings.Builder
	fmt.Fprintf(&s, "\n#### Merge\n\nIndex `%s` made of %d pushed digests.\n", digest, len(merged))
	if len(img.Platforms) > 0 {
		s.WriteString("\n| Platform | Digest | Compressed size |\n| --- | --- | --- |\n")
		for _, p := range img.Platforms[:min(len(img.Platforms), maxRows)] {
			fmt.Fprintf(&s, "| %s | `%s` | %s |\n", cell(p.Platform), p.Digest, registry.HumanSize(p.Size))
		}
		s.WriteString(more(len(img.Platforms), "platforms"))
	}
	return s.String()
}
