package admin_test

import (
	"crypto/tls"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sidpin/sidpin/configs"
)

// browser is what these tests need of a browser on the admin page: the sign-in cookie it holds, the
// page's forms as rendered, and posts with the headers a browser adds (Origin, Sec-Fetch-Site).
type browser struct {
	t      *testing.T
	base   *url.URL
	client *http.Client
	cookie *http.Cookie // the sign-in cookie; nil when the browser holds none
}

func newBrowser(t *testing.T, base string) *browser {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: u, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the tests' own certificate
	}}
}

// origin is the page's origin, as a browser puts it in Origin.
func (b *browser) origin() string { return b.base.Scheme + "://" + b.base.Host }

// sameOrigin are the headers a browser adds to a form post of the page itself.
func (b *browser) sameOrigin() map[string]string {
	return map[string]string{"Origin": b.origin(), "Sec-Fetch-Site": "same-origin"}
}

// do sends one request with the cookie the browser holds (if any); target is resolved against the
// base as a browser resolves a form action; form goes as an urlencoded body. It keeps the sign-in
// cookie the answer sets or deletes.
func (b *browser) do(method, target string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	ref, err := url.Parse(target)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.send(method, b.base.ResolveReference(ref).String(), form, header)
}

// send is do with an absolute URL sent as it is (dot segments and all), as curl --path-as-is does.
func (b *browser) send(method, target string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == configs.AdminCookie {
			b.cookie = c
			if c.MaxAge < 0 {
				b.cookie = nil
			}
		}
	}
	return resp, string(data)
}

// signIn posts the sign-in form as the page does; it fails the test unless that signs in.
func (b *browser) signIn(token string) *http.Cookie {
	b.t.Helper()
	resp, body := b.do("POST", "/login", url.Values{"token": {token}}, b.sameOrigin())
	if resp.StatusCode != http.StatusSeeOther || b.cookie == nil {
		b.t.Fatalf("sign-in: %d %v %.300q", resp.StatusCode, resp.Cookies(), body)
	}
	return b.cookie
}

// form is one posting form of the page.
type form struct {
	action, csrf, button string
}

var (
	formRE   = regexp.MustCompile(`(?s)<form([^>]*)>(.*?)</form>`)
	actionRE = regexp.MustCompile(`action="([^"]*)"`)
	csrfRE   = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]*)">`)
	buttonRE = regexp.MustCompile(`<button[^>]*>([^<]*)</button>`)
)

// page loads / and returns its status, its posting forms and its HTML.
func (b *browser) page(query string) (int, []form, string) {
	b.t.Helper()
	resp, body := b.do("GET", "/"+query, nil, map[string]string{"Sec-Fetch-Site": "none"})
	var forms []form
	for _, m := range formRE.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], `method="post"`) {
			continue
		}
		f := form{}
		if a := actionRE.FindStringSubmatch(m[1]); a != nil {
			f.action = html.UnescapeString(a[1])
		}
		if c := csrfRE.FindStringSubmatch(m[2]); c != nil {
			f.csrf = html.UnescapeString(c[1])
		}
		if bt := buttonRE.FindStringSubmatch(m[2]); bt != nil {
			f.button = strings.TrimSpace(bt[1])
		}
		forms = append(forms, f)
	}
	return resp.StatusCode, forms, body
}

// formOf is the page's form whose button says button and whose action starts with prefix.
func (b *browser) formOf(query, button, prefix string) form {
	b.t.Helper()
	status, forms, body := b.page(query)
	for _, f := range forms {
		if f.button == button && strings.HasPrefix(f.action, prefix) {
			return f
		}
	}
	b.t.Fatalf("GET /%s (%d): no %q form with an action under %s; forms %+v; %.400q", query, status, button, prefix, forms, body)
	return form{}
}

// submit posts a form of the page as the browser does: its hidden fields, from the page's origin.
func (b *browser) submit(f form) (*http.Response, string) {
	b.t.Helper()
	return b.do("POST", f.action, url.Values{"csrf": {f.csrf}}, b.sameOrigin())
}
