package docker

import "testing"

func TestTranslate(t *testing.T) {
	t.Parallel()
	// The mounts GitHub's runner gives a container action.
	self := &Self{Mounts: []Mount{
		{Source: "/var/run/docker.sock", Destination: "/var/run/docker.sock"},
		{Source: "/home/runner/work/_temp", Destination: "/github/runner_temp"},
		{Source: "/home/runner/work/_temp/_github_home", Destination: "/github/home"},
		{Source: "/home/runner/work/_temp/_github_workflow", Destination: "/github/workflow"},
		{Source: "/home/runner/work/_temp/_runner_file_commands", Destination: "/github/file_commands"},
		{Source: "/home/runner/work/app/app", Destination: "/github/workspace"},
	}}
	for _, tc := range []struct {
		host, ctr string
		ok        bool
	}{
		{"/home/runner/work/_temp/secret", "/github/runner_temp/secret", true},
		{"/home/runner/work/_temp", "/github/runner_temp", true},
		{"/home/runner/work/_temp/_github_home/.docker", "/github/home/.docker", true},
		{"/home/runner/work/app/app/ca.pem", "/github/workspace/ca.pem", true},
		{"/home/runner/work/app/application", "/home/runner/work/app/application", false},
		{"/home/runner/work/_tempest/x", "/home/runner/work/_tempest/x", false},
		{"/etc/ssl/certs", "/etc/ssl/certs", false},
	} {
		got, ok := self.ContainerPath(tc.host)
		if got != tc.ctr || ok != tc.ok {
			t.Errorf("ContainerPath(%q) = %q, %v; want %q, %v", tc.host, got, ok, tc.ctr, tc.ok)
		}
		if !tc.ok {
			continue
		}
		back, ok := self.HostPath(tc.ctr)
		if back != tc.host || !ok {
			t.Errorf("HostPath(%q) = %q, %v; want %q", tc.ctr, back, ok, tc.host)
		}
	}
	if _, ok := self.HostPath("/tmp/x"); ok {
		t.Error("HostPath of a path on no mount is ok")
	}
	var local *Self
	if p, ok := local.HostPath("/tmp/x"); p != "/tmp/x" || !ok {
		t.Errorf("without a container HostPath = %q, %v; want the path itself", p, ok)
	}
}

func TestJobNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		self *Self
		want string
	}{
		{nil, ""},
		{&Self{NetworkMode: "bridge", Networks: []string{"bridge"}}, ""},
		{&Self{NetworkMode: "default", Networks: []string{"bridge"}}, ""},
		{&Self{NetworkMode: "github_network_1234", Networks: []string{"github_network_1234"}}, "github_network_1234"},
		{&Self{NetworkMode: "host", Networks: []string{"host"}}, "host"},
		{&Self{NetworkMode: "bridge", Networks: []string{"bridge", "extra"}}, "extra"},
		{&Self{NetworkMode: "container:abc"}, ""},
	} {
		if got := tc.self.JobNetwork(); got != tc.want {
			t.Errorf("JobNetwork(%+v) = %q, want %q", tc.self, got, tc.want)
		}
	}
}

func TestRunValue(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "image", "RUNNER_NAME": "GitHub Actions 7"}
	if got := RunValue(func(k string) string { return env[k] }); got != "42-2-image-GitHub Actions 7" {
		t.Errorf("RunValue = %q", got)
	}
}
