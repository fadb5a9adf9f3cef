package dev.limner.examples;

import dev.limner.client.ErrorDetails;
import dev.limner.client.JobWatch;
import dev.limner.client.LimnerClient;
import dev.limner.client.LimnerOptions;
import dev.limner.client.TlsConfig;
import dev.limner.v1.GenerateImageRequest;
import dev.limner.v1.ImageOptions;
import dev.limner.v1.ImageOutput;
import dev.limner.v1.JobEvent;
import dev.limner.v1.JobProgress;
import dev.limner.v1.JobResult;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Generates an image with a Limner server, prints the job's progress as it streams, and saves
 * the result:
 *
 * <pre>
 * mvn -q test-compile exec:java -Dexec.args="--prompt 'a lighthouse at dusk' --out lighthouse.png"
 * </pre>
 *
 * <p>Flags: --addr (default $LIMNER_ADDR or 127.0.0.1:50051), --prompt, --model, --width,
 * --height, --seed, --out, --api-key ($LIMNER_API_KEY), --tls, --ca-cert ($LIMNER_CA_CERT),
 * --client-cert ($LIMNER_CLIENT_CERT), --client-key ($LIMNER_CLIENT_KEY).
 */
public final class GenerateImage {
  private GenerateImage() {}

  public static void main(String[] args) {
    try {
      run(args, System.out);
    } catch (StatusRuntimeException e) {
      System.err.println("limner-example: " + ErrorDetails.describe(e));
      System.exit(1);
    } catch (Exception e) {
      System.err.println("limner-example: " + e.getMessage());
      System.exit(1);
    }
  }

  /** Runs the example; returns the saved file. */
  public static Path run(String[] args, PrintStream out) throws Exception {
    Map<String, String> flags = parse(args);
    String addr = flags.getOrDefault("addr", env("LIMNER_ADDR", "127.0.0.1:50051"));
    String caCert = flags.getOrDefault("ca-cert", env("LIMNER_CA_CERT", ""));
    String clientCert = flags.getOrDefault("client-cert", env("LIMNER_CLIENT_CERT", ""));
    String clientKey = flags.getOrDefault("client-key", env("LIMNER_CLIENT_KEY", ""));
    Path output = Path.of(flags.getOrDefault("out", "limner-example.png"));

    LimnerOptions.Builder options =
        LimnerOptions.builder().apiKey(flags.getOrDefault("api-key", env("LIMNER_API_KEY", "")));
    if (flags.containsKey("tls") || !caCert.isEmpty() || !clientCert.isEmpty()
        || !clientKey.isEmpty()) {
      TlsConfig.Builder tls = TlsConfig.builder();
      if (!caCert.isEmpty()) {
        tls.caFile(Path.of(caCert));
      }
      if (!clientCert.isEmpty() || !clientKey.isEmpty()) {
        tls.clientCertificate(
            clientCert.isEmpty() ? null : Path.of(clientCert),
            clientKey.isEmpty() ? null : Path.of(clientKey));
      }
      options.tls(tls.build());
    }

    GenerateImageRequest request =
        GenerateImageRequest.newBuilder()
            .setPrompt(flags.getOrDefault("prompt", "a lighthouse at dusk"))
            .setModel(flags.getOrDefault("model", ""))
            .setOptions(
                ImageOptions.newBuilder()
                    .setWidth(Integer.parseInt(flags.getOrDefault("width", "512")))
                    .setHeight(Integer.parseInt(flags.getOrDefault("height", "512")))
                    .setSeed(Long.parseLong(flags.getOrDefault("seed", "7"))))
            .build();

    try (LimnerClient client = LimnerClient.connect(addr, options.build());
        JobWatch watch = client.generate(request)) {
      JobResult result = null;
      for (JobEvent event : watch) {
        switch (event.getEventCase()) {
          case SNAPSHOT:
            out.printf("job %s (%s)%n", event.getSnapshot().getName(), event.getSnapshot().getState());
            break;
          case PROGRESS:
            out.println(progressLine(event.getProgress()));
            break;
          case WARNING:
            out.printf("warning %s: %s%n", event.getWarning().getCode(), event.getWarning().getMessage());
            break;
          case COMPLETED:
            result = event.getCompleted();
            break;
          case FAILED:
            throw new IllegalStateException("job failed: " + event.getFailed().getMessage());
          case CANCELLED:
            throw new IllegalStateException("job cancelled: " + event.getCancelled().getReason());
          default:
            break;
        }
      }
      if (result == null || result.getImagesCount() == 0) {
        throw new IllegalStateException("the job ended without an image");
      }
      ImageOutput image = result.getImages(0);
      long written = client.downloadAsset(image.getAsset(), output);
      out.printf("completed: %s %dx%d %s, %d bytes saved to %s%n", image.getAsset(),
          image.getWidth(), image.getHeight(), image.getMimeType(), written, output);
      return output;
    }
  }

  static String progressLine(JobProgress p) {
    String stage = p.getStage().name().replaceFirst("^JOB_STAGE_", "").toLowerCase(Locale.ROOT);
    StringBuilder line = new StringBuilder(stage);
    if (p.getTotalSteps() > 0) {
      int width = 20;
      int done = p.getStep() * width / p.getTotalSteps();
      line = new StringBuilder(String.format("%-10s", stage));
      line.append(" [").append("#".repeat(done)).append(".".repeat(width - done)).append("] ")
          .append(p.getStep()).append('/').append(p.getTotalSteps());
    }
    if (p.getQueuePosition() > 0) {
      line.append(" queue position ").append(p.getQueuePosition());
    }
    if (p.hasEta() && p.getTotalSteps() > 0 && p.getStep() < p.getTotalSteps()) {
      double seconds = p.getEta().getSeconds() + p.getEta().getNanos() / 1e9;
      line.append(String.format(Locale.ROOT, " eta %.1fs", seconds));
    }
    return line.toString();
  }

  private static Map<String, String> parse(String[] args) {
    Map<String, String> flags = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument " + arg);
      }
      String name = arg.substring(2);
      int eq = name.indexOf('=');
      if (eq >= 0) {
        flags.put(name.substring(0, eq), name.substring(eq + 1));
      } else if (name.equals("tls")) {
        flags.put(name, "true");
      } else if (i + 1 < args.length) {
        flags.put(name, args[++i]);
      } else {
        throw new IllegalArgumentException("flag --" + name + " needs a value");
      }
    }
    return flags;
  }

  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }
}
