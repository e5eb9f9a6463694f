// Package rewrite is the rewrite directive's handler: it rewrites the
// question of a query (its name, type or class) before handing it on, and puts the reply back in the terms the client
// asked in: the question as asked, and, as the rules say, record names and
// values mapped back, TTLs clamped and the rcode changed. All the rewrite
// directives of a server block are one handler whose rules run in file
// order, as in CoreDNS: a stop rule that matches ends them, a continue rule
// hands the query as it left it to the next rule.
package rewrite
