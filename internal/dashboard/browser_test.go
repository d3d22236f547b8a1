package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/testenv/chromium"
)

// checkPage loads the dashboard in a same-origin frame and asks the DOM Chromium built, and its
// layout, what a person would look for; it writes the answers into #results as JSON.
const checkPage = `<!doctype html><html><head><meta charset="utf-8"><title>check</title></head><body>
<pre id="results">not run</pre>
<iframe id="f" src="/?refresh=off" style="width:1280px;height:900px;border:0"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var doc = this.contentDocument, out = {};
  var q = function (s) { return doc.querySelector(s); };
  var text = function (s) { var e = q(s); return e ? e.textContent.replace(/\s+/g, ' ').trim() : ''; };
  var ids = ['hello-test', 'hello-alpha', 'hello-prod'];
  out['three stage cards'] = ids.every(function (id) { return doc.getElementById(id); });
  var r = ids.map(function (id) { var e = doc.getElementById(id); return e ? e.getBoundingClientRect() : {top: -1, left: 0, right: 0}; });
  out['stages side by side'] = r[0].top === r[1].top && r[1].top === r[2].top && r[0].right <= r[1].left && r[1].right <= r[2].left;
  out['every stage card has a heading'] = Array.prototype.every.call(doc.querySelectorAll('section.stage'),
    function (s) { var h = doc.getElementById(s.getAttribute('aria-labelledby')); return h && h.tagName === 'H3' && h.textContent; });
  out['locked stage shows a lock badge'] = /🔒 locked/.test(text('#hello-prod > header'));
  out['lock names owner, reason and since'] = /Locked by @sre-sam \d+[mh] ago: “incident INC-42: hold prod”/.test(text('#hello-prod .lock'));
  out['unlocked stage shows no lock'] = !q('#hello-test .lock') && !q('#hello-alpha .lock');
  out['slot that serves'] = /serving from slot prod-backup/.test(text('#hello-prod .serving'));
  out['release tag as the live version'] = text('#hello-prod .live .tag') === 'v1.2.0' && text('#hello-prod .live .sha') === 'fffffff';
  out['sha as the live version without a tag'] = text('#hello-test .live') === 'bbbbbbb';
  out['pod progress in flight'] = /rolling out.*api: 2 of 3 pods updated/.test(text('#hello-test .flight'));
  out['slot switch in flight'] = /switching slot.*slot switch → prod/.test(text('#hello-prod .flight'));
  out['held deploy'] = /held.*starts once the alpha branch moves/.test(text('#hello-alpha .flight'));
  out['rollback marked in history'] = /rollback/.test(text('#hello-alpha tbody'));
  var forced = q('#hello-prod tbody .forced');
  out['forced deploy with its reason'] = !!forced && /hotfix for the login outage/.test(forced.title) && /forced: hotfix/.test(text('#hello-prod tbody'));
  out['PR builds listed per app'] = /#12 1212121 succeeded/.test(text('#app-hello .prs')) && /#13 1313131 building/.test(text('#app-hello .prs'));
  out['PR builds are not stages'] = !q('[id^="hello-pr#"]');
  out['releases line'] = /v1\.3\.0 open release issue #22/.test(text('#app-hello .releases')) && /v1\.3\.1 refused/.test(text('#app-hello .releases'));
  out['no reload when paused'] = !q('meta[http-equiv="refresh"]');
  document.getElementById('results').textContent = JSON.stringify(out);
});
</script></body></html>`

// TestInBrowser renders the page in a real headless Chromium: the DOM it built has the stages
// and what each shows (a lock, a slot, a release tag, builds in flight, pull-request builds),
// laid out side by side, and its screenshot is not blank.
func TestInBrowser(t *testing.T) {
	bin := chromium.Find(t)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", asViewer(world(t), access.Everything()))
	mux.HandleFunc("GET /check", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(checkPage))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	shot := filepath.Join(dir, "dashboard.png")
	flags := chromium.Flags(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dump := func(url string) []byte {
		t.Helper()
		dom, err := exec.CommandContext(ctx, bin, append(flags, "--dump-dom", url)...).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom %s: %v", url, err)
		}
		return dom
	}

	dom := dump(srv.URL + "/")
	for _, want := range []string{`id="hello-test"`, `id="hello-prod"`, "api: 2 of 3 pods updated", "serving from <strong>slot prod-backup</strong>"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the DOM Chromium built lacks %s", want)
		}
	}

	m := regexp.MustCompile(`(?s)<pre id="results">(.*?)</pre>`).FindSubmatch(dump(srv.URL + "/check"))
	var results map[string]bool
	if m == nil || json.Unmarshal(m[1], &results) != nil {
		t.Fatalf("the checks did not run in the browser: %q", m)
	}
	if len(results) < 18 {
		t.Errorf("only %d checks ran", len(results))
	}
	for name, ok := range results {
		if !ok {
			t.Errorf("in the browser: %s: no", name)
		}
	}

	if out, err := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, srv.URL+"/")...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	notBlank(t, shot)
	// STAGECOACH_SCREENSHOT=FILE keeps the screenshot, to look at it.
	if keep := os.Getenv("STAGECOACH_SCREENSHOT"); keep != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(keep, b, 0o644)
		}
	}
}

// notBlank fails unless the PNG at path has several colours and some dark (text) pixels.
func notBlank(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colors := map[uint32]bool{}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			if r+g+bl < 3*0x8000 {
				dark++
			}
		}
	}
	samples := (b.Dx() / 2) * (b.Dy() / 2)
	t.Logf("screenshot %dx%d: %d colours, %.2f%% dark pixels", b.Dx(), b.Dy(), len(colors), 100*float64(dark)/float64(samples))
	if len(colors) < 8 || dark < samples/500 {
		t.Errorf("the screenshot looks blank: %d colours, %d dark pixels of %d", len(colors), dark, samples)
	}
}
