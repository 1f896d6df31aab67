package admin

import (
	"crypto/subtle"
	"html/template"
	"time"

	"github.com/valyala/fasthttp"
)

// The page's sign-in and sign-out: a token posted once starts a server-side session (session.go),
// whose cookie then authorizes the page's requests (guard.go).

var loginTemplate = template.Must(template.ParseFS(webFiles, "web/login.html"))

// login checks a token posted from the sign-in form and starts a session. The Origin check has run
// (login CSRF); a browser that is already signed in must also send its session's CSRF token.
func (s *Server) login(ctx *fasthttp.RequestCtx, c caller) {
	if c.signedIn && !c.csrfOK(ctx) {
		s.refuse(ctx, "already signed in: reload the admin page")
		return
	}
	if len(s.token) == 0 || subtle.ConstantTimeCompare(ctx.PostArgs().Peek("token"), s.token) != 1 {
		s.log.Info("admin page sign-in refused: wrong token", "remote", ctx.RemoteAddr().String())
		s.loginPage(ctx, "Wrong token.")
		return
	}
	if c.signedIn {
		s.sessions.end(c.session.key) // a fresh id at every sign-in
	}
	s.startSession(ctx)
	s.log.Info("admin page signed in", "remote", ctx.RemoteAddr().String())
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

// startSession creates a session and sets its cookie; the cookie lasts as long as the session may.
func (s *Server) startSession(ctx *fasthttp.RequestCtx) session {
	id, sess := s.sessions.create()
	setSessionCookie(ctx, id, int(sessionLifetime/time.Second))
	return sess
}

// logout is the page's sign-out button: the session ends and the cookie goes.
func (s *Server) logout(ctx *fasthttp.RequestCtx, c caller) {
	if c.signedIn {
		s.sessions.end(c.session.key)
		s.log.Info("admin page signed out", "remote", ctx.RemoteAddr().String())
	}
	setSessionCookie(ctx, "", -1)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

func (s *Server) loginPage(ctx *fasthttp.RequestCtx, msg string) {
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
	setPageHeaders(ctx)
	_ = loginTemplate.Execute(ctx, msg)
}
