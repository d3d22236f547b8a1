package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The test control plane has no kubelet, so no container ever opens a file. What decides
// whether the server can read its key is fixed by the pod spec alone, and by what the kubelet
// does with it, which this file writes down (kubelet: pkg/volume/secret, configmap,
// util/atomic_writer.go, volume_linux.go):
//
//   - A Secret or ConfigMap volume's files are written by the kubelet, which runs as root: owner
//     0, group 0, mode exactly the item's mode, else the volume's defaultMode (the apiserver
//     defaults it to 0644).
//   - With the pod's fsGroup set, the kubelet then gives every file of such a volume (they are
//     read-only volumes) the group fsGroup and adds group read: mode | 0440.
//   - The container's process runs as runAsUser (the container's, else the pod's) with primary
//     group runAsGroup, and fsGroup and supplementalGroups as supplementary groups. With every
//     capability dropped, even uid 0 gets no override: the permission bits decide.
//   - The kernel grants read by the owner bits to the file's owner, else by the group bits to a
//     process in the file's group, else by the other bits.
//
// When the test runs as root it checks that last step against the kernel itself: it makes each
// file with the owner, group and mode the kubelet would give it, and reads it with cat run as
// the container's user and groups.

// identity is who a container's process runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32 // supplementary
}

// file is a file as the kubelet would make it.
type file struct {
	uid, gid uint32
	mode     os.FileMode
}

// processIdentity is who the container runs as, from the pod spec alone; it fails when the spec
// leaves it to the image.
func processIdentity(pod *corev1.PodSpec, c *corev1.Container) (identity, error) {
	var id identity
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	uid := csc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	if uid == nil {
		return id, fmt.Errorf("container %s: runAsUser is not set, so the image decides who reads the files", c.Name)
	}
	gid := csc.RunAsGroup
	if gid == nil {
		gid = psc.RunAsGroup
	}
	if gid == nil {
		return id, fmt.Errorf("container %s: runAsGroup is not set, so the image decides the primary group", c.Name)
	}
	id.uid, id.gid = uint32(*uid), uint32(*gid)
	if psc.FSGroup != nil {
		id.groups = append(id.groups, uint32(*psc.FSGroup))
	}
	for _, g := range psc.SupplementalGroups {
		id.groups = append(id.groups, uint32(g))
	}
	return id, nil
}

// volumeFile is the file at p in container c as the kubelet would make it: from the mount that
// holds p, the Secret or ConfigMap volume behind it, and the item that projects p.
func volumeFile(pod *corev1.PodSpec, c *corev1.Container, p string) (file, error) {
	var mount *corev1.VolumeMount
	var rel string
	for i, m := range c.VolumeMounts {
		switch {
		case m.SubPath != "" && p == m.MountPath:
			mount, rel = &c.VolumeMounts[i], m.SubPath
		case m.SubPath == "" && strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/"):
			mount, rel = &c.VolumeMounts[i], strings.TrimPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")
		}
	}
	if mount == nil {
		return file{}, fmt.Errorf("%s is on no volume of container %s", p, c.Name)
	}
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 {
		return file{}, fmt.Errorf("volume %s is mounted but not defined", mount.Name)
	}
	v := pod.Volumes[i]
	var items []corev1.KeyToPath
	var defaultMode *int32
	switch {
	case v.Secret != nil:
		items, defaultMode = v.Secret.Items, v.Secret.DefaultMode
	case v.ConfigMap != nil:
		items, defaultMode = v.ConfigMap.Items, v.ConfigMap.DefaultMode
	default:
		return file{}, fmt.Errorf("volume %s is neither a Secret nor a ConfigMap", v.Name)
	}
	mode := int32(0o644) // the apiserver's default, should a spec come without it
	if defaultMode != nil {
		mode = *defaultMode
	}
	if len(items) > 0 {
		j := slices.IndexFunc(items, func(it corev1.KeyToPath) bool { return path.Clean(it.Path) == path.Clean(rel) })
		if j < 0 {
			return file{}, fmt.Errorf("volume %s projects no item at %s", v.Name, rel)
		}
		if items[j].Mode != nil {
			mode = *items[j].Mode
		}
	}
	f := file{uid: 0, gid: 0, mode: os.FileMode(mode) & os.ModePerm}
	if fs := pod.SecurityContext; fs != nil && fs.FSGroup != nil {
		f.gid, f.mode = uint32(*fs.FSGroup), f.mode|0o440
	}
	return f, nil
}

// canRead is the kernel's read permission check without capabilities.
func canRead(id identity, f file) bool {
	switch {
	case id.uid == f.uid:
		return f.mode&0o400 != 0
	case id.gid == f.gid || slices.Contains(id.groups, f.gid):
		return f.mode&0o040 != 0
	}
	return f.mode&0o004 != 0
}

// kernelCanRead makes f in a fresh directory with its owner, group and mode, and asks the
// kernel whether id can read it, by running cat as id. It needs root; ok is false without it.
func kernelCanRead(t *testing.T, id identity, f file) (readable, ok bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return false, false
	}
	dir, err := os.MkdirTemp("", "stagecoach-podfile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the volume's directory: anyone may look in
		t.Fatal(err)
	}
	p := filepath.Join(dir, "file")
	if err := os.WriteFile(p, []byte("key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(f.uid), int(f.gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, f.mode); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cat", p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: id.groups}}
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("cat as %d:%d %v: %v: %s", id.uid, id.gid, id.groups, err, out)
	}
	return err == nil, true
}

// filesTheServerReads are the files the stagecoach container's server opens: its configuration
// (--config) and the GitHub App's key (STAGECOACH_GITHUB_PRIVATE_KEY_FILE).
func filesTheServerReads(t *testing.T, c *corev1.Container) []string {
	t.Helper()
	var out []string
	if i := slices.Index(c.Args, "--config"); i >= 0 && i+1 < len(c.Args) {
		out = append(out, c.Args[i+1])
	} else {
		t.Errorf("container %s has no --config", c.Name)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "STAGECOACH_GITHUB_PRIVATE_KEY_FILE" }); i >= 0 {
		out = append(out, c.Env[i].Value)
	} else {
		t.Errorf("container %s names no private key file", c.Name)
	}
	return out
}

// checkFilesReadable fails t for every file the server reads that its process could not read,
// and reports what the kernel said when it could ask it.
func checkFilesReadable(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	id, err := processIdentity(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range filesTheServerReads(t, c) {
		f, err := volumeFile(pod, c, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if !canRead(id, f) {
			t.Errorf("%s is owned by %d:%d with mode %04o: the server, running as %d:%d with groups %v, cannot read it",
				p, f.uid, f.gid, f.mode, id.uid, id.gid, id.groups)
		}
		if got, ok := kernelCanRead(t, id, f); ok && got != canRead(id, f) {
			t.Errorf("%s: the kernel says readable %v, the model %v", p, got, canRead(id, f))
		}
	}
}
