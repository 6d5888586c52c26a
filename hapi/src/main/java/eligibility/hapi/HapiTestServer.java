package eligibility.hapi;

import ca.uhn.fhir.rest.server.RestfulServer;
import java.net.InetSocketAddress;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.http.UriCompliance;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Starts the HAPI FHIR JPA R4 server at http://HOST:PORT/fhir (the starter image's path).
 *
 * <p>Options are system properties: {@code -Dhapi.port=8080} (0 = any free port),
 * {@code -Dhapi.host=127.0.0.1} and {@code -Dhapi.parent-pid=N} (exit when process N ends, so a
 * test run that is killed leaves no server behind). When the server answers, one line
 * {@code HAPI FHIR ready at http://host:port/fhir} goes to stdout; the test fixture waits for
 * {@code /fhir/metadata} rather than for that line.
 */
public final class HapiTestServer {

	private HapiTestServer() {}

	public static void main(String[] args) throws Exception {
		String host = System.getProperty("hapi.host", "127.0.0.1");
		int port = Integer.parseInt(System.getProperty("hapi.port", "8080"));
		exitWithParent(System.getProperty("hapi.parent-pid"));

		AnnotationConfigApplicationContext context = new AnnotationConfigApplicationContext(ServerConfig.class);
		RestfulServer restfulServer = context.getBean(RestfulServer.class);

		Server jetty = new Server();
		HttpConfiguration http = new HttpConfiguration();
		// The starter's Tomcat allows a raw "|" in query strings (server.tomcat.relaxed-query-chars);
		// Jetty's LEGACY compliance accepts it the same way, so token searches such as
		// identifier=system|value work unencoded as they do against the image.
		http.setUriCompliance(UriCompliance.LEGACY);
		http.setSendServerVersion(false);
		ServerConnector connector = new ServerConnector(jetty, new HttpConnectionFactory(http));
		connector.setHost(host);
		connector.setPort(port);
		jetty.addConnector(connector);

		ServletContextHandler handler = new ServletContextHandler();
		handler.setContextPath("/");
		ServletHolder holder = new ServletHolder("fhir", restfulServer);
		holder.setInitOrder(1);
		// The starter maps HAPI's RestfulServer at /fhir/* (Application.hapiServletRegistration).
		handler.addServlet(holder, "/fhir/*");
		jetty.setHandler(handler);

		Runtime.getRuntime().addShutdownHook(new Thread(() -> {
			try {
				jetty.stop();
			} catch (Exception ignored) {
				// Stopping anyway: the JVM is exiting.
			}
			context.close();
		}, "hapi-shutdown"));

		jetty.start();
		InetSocketAddress bound = new InetSocketAddress(host, connector.getLocalPort());
		System.out.println("HAPI FHIR ready at http://" + bound.getHostString() + ":" + bound.getPort() + "/fhir");
		System.out.flush();
		jetty.join();
	}

	private static void exitWithParent(String parentPid) {
		if (parentPid == null || parentPid.isBlank()) {
			return;
		}
		ProcessHandle.of(Long.parseLong(parentPid.trim())).ifPresentOrElse(
				parent -> parent.onExit().thenRun(() -> System.exit(0)), () -> System.exit(0));
	}
}
