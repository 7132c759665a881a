// Package webtest holds the web console's end-to-end tests: a real relay
// serving the embedded console over HTTPS, real agents over mutual TLS,
// and Debian's Chromium driven from Go through chromedp. Outside CI the
// tests skip when Chromium is missing; with CI=true they fail instead
// (testkit.Need). Under -short they skip (testkit.Heavy).
package webtest
