package eioanswer

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/engineio"
)

func TestWrite(t *testing.T) {
	cases := []struct {
		code        int
		upgrade     bool
		status      int
		contentType string
		body        string
		close       bool
	}{
		{engineio.ErrCodeUnknownSID, false, 400, "application/json", `{"code":1,"message":"Session ID unknown"}`, false},
		{engineio.ErrCodeForbidden, false, 403, "application/json", `{"code":4,"message":"Forbidden"}`, false},
		{engineio.ErrCodeUnknownSID, true, 400, "text/html", "Session ID unknown", true},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		Write(&ctx, c.code, c.upgrade)
		if ctx.Response.StatusCode() != c.status || string(ctx.Response.Header.ContentType()) != c.contentType ||
			string(ctx.Response.Body()) != c.body || ctx.Response.ConnectionClose() != c.close {
			t.Errorf("code %d upgrade %v: %d %q %q close=%v", c.code, c.upgrade, ctx.Response.StatusCode(),
				ctx.Response.Header.ContentType(), ctx.Response.Body(), ctx.Response.ConnectionClose())
		}
	}
}
