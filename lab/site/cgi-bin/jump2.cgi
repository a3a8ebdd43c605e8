#!/bin/sh
# The lab's redirecting CGI, renamed from jump.cgi as in the first field report. After the fix it never
# redirects to an external URL: it always sends the visitor to the site's top page.
printf 'Status: 302 Found\r\nLocation: /\r\nContent-Type: text/plain\r\n\r\nmoved\n'
