package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

/**
 * Flink's Prometheus reporter, serving on one address only (Concord: 127.0.0.1).
 *
 * <p>Flink's own {@link PrometheusReporter} binds its HTTP server to every interface; this
 * one is the same reporter (its collectors and naming come from {@link
 * AbstractPrometheusReporter}) with the server bound to {@code host}. It lives in Flink's
 * package because the registry it serves is package-private there, and is loaded by the
 * class loader that loads flink-metrics-prometheus (the speed job's class path).
 *
 * <p>Options: {@code metrics.reporter.<name>.host} (default 127.0.0.1) and {@code .port}.
 */
public class LoopbackPrometheusReporter extends AbstractPrometheusReporter {

    private final HTTPServer server;

    LoopbackPrometheusReporter(String host, int port) {
        try {
            server = new HTTPServer(new InetSocketAddress(host, port), registry, true);
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "cannot serve Flink's metrics on " + host + ":" + port, e);
        }
        log.info("Prometheus metrics served on http://{}:{}/metrics", host, port);
    }

    @Override
    public void close() {
        server.stop();
        super.close();
    }

    /** The factory Flink finds through META-INF/services. */
    public static class Factory implements MetricReporterFactory {
        @Override
        public MetricReporter createMetricReporter(Properties properties) {
            String host = properties.getProperty("host", "127.0.0.1");
            int port = Integer.parseInt(properties.getProperty("port", "9249"));
            return new LoopbackPrometheusReporter(host, port);
        }
    }
}
