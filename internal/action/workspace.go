package action

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// workspaceOwner gives the directories and files the action creates under
// the workspace the owner (uid and gid) of the workspace itself. The action
// runs as root in its container; what it leaves root-owned in the workspace
// of a self-hosted runner, the next job's actions/checkout (running as the
// runner's user) cannot remove.
type workspaceOwner struct {
	// root is the workspace, cleaned; "" when there is none to follow.
	root     string
	uid, gid int
	// warn reports a failure, one call at a time.
	warn func(format string, args ...any)
	mu   sync.Mutex
}

// newWorkspaceOwner reads the owner of workspace (GITHUB_WORKSPACE). With
// no workspace, or one that cannot be read, it changes nothing.
func newWorkspaceOwner(workspace string, warn func(format string, args ...any)) *workspaceOwner {
	o := &workspaceOwner{warn: warn}
	if workspace == "" {
		return o
	}
	st, err := os.Stat(workspace)
	if err != nil {
		return o
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return o
	}
	o.root, o.uid, o.gid = filepath.Clean(workspace), int(sys.Uid), int(sys.Gid)
	return o
}

// inside reports whether path lies under the workspace (the workspace
// itself excluded).
func (o *workspaceOwner) inside(path string) bool {
	if o.root == "" || !filepath.IsAbs(path) {
		return false
	}
	rel, err := filepath.Rel(o.root, filepath.Clean(path))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// mkdirAll is os.MkdirAll(dir, 0o755) that gives each directory it creates
// under the workspace the workspace's owner.
func (o *workspaceOwner) mkdirAll(dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	o.own(created...)
	return nil
}

// own gives each of paths that lies under the workspace the workspace's
// owner (not following symbolic links). A failure is a warning: the files
// are there and usable, only harder to remove.
func (o *workspaceOwner) own(paths ...string) {
	for _, p := range paths {
		if !o.inside(p) {
			continue
		}
		if err := os.Lchown(p, o.uid, o.gid); err != nil {
			if pe, ok := err.(*fs.PathError); ok {
				err = pe.Err
			}
			o.mu.Lock()
			o.warn("giving %q the workspace's owner (uid %d, gid %d), so that the runner's user can remove it: %v", p, o.uid, o.gid, err)
			o.mu.Unlock()
		}
	}
}

// ownTree gives dir and everything in it the workspace's owner, when dir
// lies under the workspace.
func (o *workspaceOwner) ownTree(dir string) {
	if !o.inside(dir) {
		return
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			o.own(p)
		}
		return err
	})
	if err != nil {
		o.mu.Lock()
		o.warn("giving what is in %q the workspace's owner: %v", dir, err)
		o.mu.Unlock()
	}
}
