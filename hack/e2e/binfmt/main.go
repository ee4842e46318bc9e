// Command binfmt stands in for tonistiigi/binfmt's binfmt program in the
// end-to-end tests, which cannot pull that image. hack/e2e/images.sh builds
// it into a local image under the name the action runs
// (tonistiigi/binfmt:qemu-v<version>-<n>), next to Debian's static QEMU
// emulators at /usr/bin/qemu-<arch>.
//
// It behaves as the real program does, as far as the action can see:
//
//	binfmt --install arm64,riscv64   register qemu-<arch> handlers ("all": every
//	                                 emulator in the image not yet supported)
//	binfmt --uninstall arm64         unregister them (names, platforms or globs)
//	binfmt                           print {"supported": [...], "emulators": [...]}
//
// It mounts binfmt_misc when it is not mounted (and unmounts it at the end),
// registers with the same magic, mask and flags ("CF", plus "P" when
// QEMU_PRESERVE_ARGV0 is set): F makes the kernel open the emulator at
// registration, so it works in every container and mount namespace later.
// Per-architecture results are logged to stderr ("installing: arm64 OK",
// "installing: arm64 qemu-aarch64 already registered") and, as in the real
// program, do not change the exit status; the JSON status goes to stdout.
//
// Unlike the real program, "supported" is not found by running a test binary
// per architecture: it lists the native platform and every platform with an
// enabled binfmt_misc handler whose magic and mask are the ones below and
// whose emulator the kernel can open from this container (F flag, or the
// interpreter exists here).
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Set with -ldflags -X by hack/e2e/images.sh.
var (
	revision    = "unknown"
	qemuVersion = "unknown"
)

// config is one emulator's binfmt_misc registration: magic and mask use the
// \xHH escapes the kernel's register file parses (from QEMU's
// scripts/qemu-binfmt-conf.sh).
type config struct {
	binary   string
	platform string
	magic    string
	mask     string
}

var configs = map[string]config{
	"amd64": {"qemu-x86_64", "linux/amd64",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00`,
		`\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"arm64": {"qemu-aarch64", "linux/arm64",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"arm": {"qemu-arm", "linux/arm/v7",
		`\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"s390x": {"qemu-s390x", "linux/s390x",
		`\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff`},
	"ppc64le": {"qemu-ppc64le", "linux/ppc64le",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00`},
	"riscv64": {"qemu-riscv64", "linux/riscv64",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"386": {"qemu-i386", "linux/386",
		`\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00`,
		`\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"mips64le": {"qemu-mips64el", "linux/mips64le",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
	"mips64": {"qemu-mips64", "linux/mips64",
		`\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08`,
		`\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff`},
	"loong64": {"qemu-loongarch64", "linux/loong64",
		`\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x01`,
		`\xff\xff\xff\xff\xff\xff\xff\xfc\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`},
}

// archAliases normalizes the architecture spellings that platform strings
// accept (as containerd's platforms.Parse does) to Go's names.
var archAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
	"armel": "arm", "armv6l": "arm", "armv7l": "arm", "i386": "386", "i686": "386",
}

var (
	mount       = flag.String("mount", "/proc/sys/fs/binfmt_misc", "binfmt_misc mount point")
	toInstall   = flag.String("install", "", "architectures to install")
	toUninstall = flag.String("uninstall", "", "architectures to uninstall")
	flVersion   = flag.Bool("version", false, "display version")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	// The real program reports errors but always exits 0.
	if err := run(); err != nil {
		log.Printf("error: %v", err)
	}
}

func run() error {
	if *flVersion {
		log.Printf("binfmt/%s qemu/%s go/%s", revision, qemuVersion, strings.TrimPrefix(runtime.Version(), "go"))
		return nil
	}
	if _, err := os.Stat(filepath.Join(*mount, "status")); err != nil {
		if err := syscall.Mount("binfmt_misc", *mount, "binfmt_misc", 0, ""); err != nil {
			return fmt.Errorf("cannot mount binfmt_misc filesystem at %s: %w", *mount, err)
		}
		// Registrations are global and outlive the mount.
		defer func() { _ = syscall.Unmount(*mount, 0) }()
	}

	for _, name := range parseUninstall(*toUninstall) {
		if err := uninstall(name); err != nil {
			log.Printf("uninstalling: %s %v", name, err)
		} else {
			log.Printf("uninstalling: %s OK", name)
		}
	}

	var arches []string
	if *toInstall == "all" {
		arches = allArch()
	} else {
		arches = parseArch(*toInstall)
	}
	if len(arches) > 0 {
		// Some kernels show new entries only after the mount point is touched.
		t := time.Now()
		_ = os.Chtimes(*mount, t, t)
	}
	for _, arch := range arches {
		if err := install(arch); err != nil {
			log.Printf("installing: %s %v", arch, err)
		} else {
			log.Printf("installing: %s OK", arch)
		}
	}
	return printStatus()
}

// normalizeArch returns the architecture of a platform ("linux/arm64",
// "arm64", "aarch64"), or in unchanged when it names none.
func normalizeArch(in string) string {
	arch := in
	if parts := strings.Split(in, "/"); len(parts) >= 2 {
		arch = parts[1]
	}
	arch = strings.ToLower(arch)
	if a, ok := archAliases[arch]; ok {
		return a
	}
	if _, ok := configs[arch]; ok {
		return arch
	}
	return in
}

func parseArch(in string) []string {
	if in == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(in, ",") {
		out = append(out, normalizeArch(v))
	}
	return out
}

// parseUninstall turns platforms into their emulator's name without the
// "qemu-" prefix (matched as a suffix by uninstall) and expands globs.
func parseUninstall(in string) []string {
	if in == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(in, ",") {
		if c, ok := configs[normalizeArch(v)]; ok {
			v = strings.TrimPrefix(c.binary, "qemu-")
		}
		matches, err := filepath.Glob(filepath.Join(*mount, v))
		if err != nil || len(matches) == 0 {
			out = append(out, v)
			continue
		}
		for _, m := range matches {
			out = append(out, filepath.Base(m))
		}
	}
	return out
}

func uninstall(name string) error {
	entries, err := os.ReadDir(*mount)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch e.Name() {
		case "register", "status", "WSLInterop":
			continue
		}
		if e.Name() == name || strings.HasSuffix(e.Name(), "-"+name) {
			return os.WriteFile(filepath.Join(*mount, e.Name()), []byte("-1"), 0o600)
		}
	}
	return errors.New("not found")
}

// binaryNames returns the handler's name and the emulator's path, honouring
// QEMU_BINARY_PATH and QEMU_BINARY_PREFIX as the real program does.
func binaryNames(c config) (string, string, error) {
	dir := "/usr/bin"
	if v := os.Getenv("QEMU_BINARY_PATH"); v != "" {
		dir = v
	}
	base := c.binary
	if prefix := os.Getenv("QEMU_BINARY_PREFIX"); prefix != "" {
		if strings.ContainsRune(prefix, os.PathSeparator) {
			return "", "", errors.New("binary prefix must not contain path separator (Hint: set $QEMU_BINARY_PATH to specify the directory)")
		}
		base = prefix + base
	}
	return base, filepath.Join(dir, base), nil
}

func install(arch string) error {
	c, ok := configs[arch]
	if !ok {
		return fmt.Errorf("unsupported architecture: %v", arch)
	}
	register := filepath.Join(*mount, "register")
	f, err := os.OpenFile(register, os.O_WRONLY, 0)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return fmt.Errorf("ENOENT opening %s is it mounted?", register)
		case errors.Is(err, syscall.EPERM):
			return fmt.Errorf("EPERM opening %s check permissions?", register)
		}
		return fmt.Errorf("cannot open %s: %s", register, err)
	}
	defer f.Close()

	flags := "CF"
	if os.Getenv("QEMU_PRESERVE_ARGV0") != "" {
		flags += "P"
	}
	base, full, err := binaryNames(c)
	if err != nil {
		return err
	}
	line := fmt.Sprintf(":%s:M:0:%s:%s:%s:%s", base, c.magic, c.mask, full, flags)
	if _, err := f.Write([]byte(line)); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%s already registered", base)
		}
		return fmt.Errorf("cannot register %q to %s: %s", full, register, err)
	}
	return nil
}

// handler is an enabled binfmt_misc entry, as its file in the mount shows it.
type handler struct {
	name, interpreter, flags, magic, mask string
}

// usable reports whether the kernel can start the handler's emulator from
// here: with F it opened the file at registration; without F it looks the
// interpreter up in the caller's root, where it may not exist.
func (h handler) usable() bool {
	if strings.Contains(h.flags, "F") {
		return true
	}
	_, err := os.Stat(h.interpreter)
	return err == nil
}

// handlers lists the enabled entries of the binfmt_misc mount.
func handlers() ([]handler, error) {
	entries, err := os.ReadDir(*mount)
	if err != nil {
		return nil, err
	}
	var out []handler
	for _, e := range entries {
		if e.Name() == "register" || e.Name() == "status" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(*mount, e.Name()))
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(string(data), "enabled") {
			continue
		}
		h := handler{name: e.Name()}
		for _, line := range strings.Split(string(data), "\n") {
			key, value, _ := strings.Cut(line, " ")
			switch key {
			case "interpreter":
				h.interpreter = value
			case "flags:":
				h.flags = value
			case "magic":
				h.magic = value
			case "mask":
				h.mask = value
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// hexOf turns a register-file escape string (`\x7fELF...`) into the plain hex
// that binfmt_misc shows for an entry.
func hexOf(escaped string) string {
	var b []byte
	for i := 0; i < len(escaped); i++ {
		if escaped[i] == '\\' && i+3 < len(escaped) && escaped[i+1] == 'x' {
			if v, err := hex.DecodeString(escaped[i+2 : i+4]); err == nil {
				b = append(b, v[0])
				i += 3
				continue
			}
		}
		b = append(b, escaped[i])
	}
	return hex.EncodeToString(b)
}

// nativePlatform is the platform this program runs on.
func nativePlatform() string {
	if runtime.GOARCH == "arm" {
		return "linux/arm/v7"
	}
	return "linux/" + runtime.GOARCH
}

// supported lists the native platform, then the platforms that an enabled
// and usable handler emulates, sorted.
func supported(hs []handler) []string {
	native := nativePlatform()
	var emulated []string
	for _, c := range configs {
		if c.platform == native {
			continue
		}
		magic, mask := hexOf(c.magic), hexOf(c.mask)
		for _, h := range hs {
			// The kernel shows the magic already masked.
			if h.usable() && h.mask == mask && (h.magic == magic || h.magic == maskHex(magic, mask)) {
				emulated = append(emulated, c.platform)
				break
			}
		}
	}
	slices.Sort(emulated)
	return append([]string{native}, emulated...)
}

// maskHex applies mask to magic, both in hex of the same length.
func maskHex(magic, mask string) string {
	a, err1 := hex.DecodeString(magic)
	m, err2 := hex.DecodeString(mask)
	if err1 != nil || err2 != nil || len(a) != len(m) {
		return magic
	}
	for i := range a {
		a[i] &= m[i]
	}
	return hex.EncodeToString(a)
}

// allArch is what --install all installs: every architecture not yet
// supported whose emulator is in the image.
func allArch() []string {
	hs, err := handlers()
	if err != nil {
		log.Printf("error: %v", err)
	}
	have := supported(hs)
	var out []string
	for arch, c := range configs {
		if slices.Contains(have, c.platform) {
			continue
		}
		_, full, err := binaryNames(c)
		if err != nil {
			// install reports the error.
			out = append(out, arch)
			continue
		}
		if _, err := os.Stat(full); err == nil {
			out = append(out, arch)
		}
	}
	slices.Sort(out)
	return out
}

func printStatus() error {
	hs, err := handlers()
	if err != nil {
		return err
	}
	var emulators []string
	for _, h := range hs {
		emulators = append(emulators, h.name)
	}
	out := struct {
		Supported []string `json:"supported"`
		Emulators []string `json:"emulators"`
	}{supported(hs), emulators}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", data)
	return nil
}
