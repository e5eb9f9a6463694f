/* gai: the musl client of the real-client test. Compiled at test time with
 * musl-gcc -static.
 *   gai NAME    getaddrinfo(NAME, AF_UNSPEC): prints one address a line
 *   gai -r IP   getnameinfo(IP, NI_NAMEREQD): prints the name
 * Exit 0 on success, 2 with the error on stderr otherwise. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "-r") == 0) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1) {
			fprintf(stderr, "not an IPv4 address: %s\n", argv[2]);
			return 2;
		}
		char host[NI_MAXHOST];
		int rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL, 0, NI_NAMEREQD);
		if (rc != 0) {
			fprintf(stderr, "getnameinfo: %s\n", gai_strerror(rc));
			return 2;
		}
		printf("%s\n", host);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: gai NAME | gai -r IP\n");
		return 2;
	}
	struct addrinfo hints, *res, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(argv[1], NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(rc));
		return 2;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		void *p = ai->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
		                                   : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		printf("%s\n", inet_ntop(ai->ai_family, p, buf, sizeof buf));
	}
	freeaddrinfo(res);
	return 0;
}
