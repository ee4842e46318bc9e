package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	page(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Handmade jewellery") {
		t.Errorf("GET / = %d %q", rec.Code, rec.Body.String())
	}
}
