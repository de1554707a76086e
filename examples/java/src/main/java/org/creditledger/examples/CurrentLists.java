package org.creditledger.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A sector system's copy of the ledger's current red and black lists, in Java.
 *
 * <p>Reads the compacted topic credit.lists.current from the beginning (read_committed: only what the
 * list keeper's transactions committed) up to its end, decodes each record with the writer's schema
 * fetched by id from the ledger's schema registry API (cached by id), and keeps one row per key
 * {@code <entity id>|<list kind>}: listed, and the active entries. A delisting is an explicit value
 * (listed = false), so the table is right however long the subscriber was away. At the end it prints
 * the table as JSON on standard output.
 *
 * <p>The brokers require SASL/SCRAM-SHA-512: the subscriber logs in as the sector system's own
 * principal (--user), which may read credit.lists.* and credit.alerts and nothing else, with the
 * password from a file (--password-file, never on the command line).
 *
 * <pre>
 * java -jar examples/java/target/credit-subscriber.jar --bootstrap 127.0.0.1:19092 \
 *      --user sector-banking --password-file .stack/keys/kafka/sector-banking.password \
 *      --registry http://127.0.0.1:8083 [--entity uscc:91411002MA...]...
 * </pre>
 */
public final class CurrentLists {
  static final String TOPIC = "credit.lists.current";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final String registry;
  private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
  private final Map<String, ObjectNode> table = new TreeMap<>();

  CurrentLists(String registry) {
    this.registry = registry.replaceAll("/+$", "");
  }

  /** The writer's schema of an id, from the registry (GET /schemas/ids/{id}), once per id. */
  GenericDatumReader<GenericRecord> reader(int id) throws IOException, InterruptedException {
    GenericDatumReader<GenericRecord> known = readers.get(id);
    if (known != null) {
      return known;
    }
    HttpRequest request = HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id))
        .header("Accept", "application/vnd.schemaregistry.v1+json").timeout(Duration.ofSeconds(10)).build();
    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IOException("schema id " + id + ": the registry answered " + response.statusCode() + " "
          + response.body());
    }
    Schema schema = new Schema.Parser().parse(JSON.readTree(response.body()).get("schema").asText());
    GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema);
    readers.put(id, reader);
    return reader;
  }

  /** A framed record: magic byte 0, the schema id (4 bytes, big-endian), the Avro body. */
  GenericRecord decode(byte[] value) throws IOException, InterruptedException {
    ByteBuffer buffer = ByteBuffer.wrap(value);
    if (value.length < 5 || buffer.get() != 0) {
      throw new IOException("not a framed Avro record");
    }
    int id = buffer.getInt();
    BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null);
    return reader(id).read(null, decoder);
  }

  void apply(String key, GenericRecord status) {
    ObjectNode row = JSON.createObjectNode();
    row.put("listed", (Boolean) status.get("listed"));
    ArrayNode entries = row.putArray("entries");
    for (Object o : (List<?>) status.get("entries")) {
      GenericRecord e = (GenericRecord) o;
      ObjectNode entry = entries.addObject();
      entry.put("ref", e.get("ref").toString());
      entry.put("department", e.get("department").toString());
      entry.put("listed_on", java.time.LocalDate.ofEpochDay((Integer) e.get("listed_on")).toString());
      entry.put("event_id", e.get("event_id").toString());
    }
    table.put(key, row);
  }

  /** Reads the topic from the beginning to its end (the last committed record at the start). */
  void readAll(String bootstrap, String user, String password) throws IOException, InterruptedException {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");  // SASL_SSL on a TLS listener
    props.put(SaslConfigs.SASL_MECHANISM, "SCRAM-SHA-512");
    props.put(SaslConfigs.SASL_JAAS_CONFIG, "org.apache.kafka.common.security.scram.ScramLoginModule required "
        + "username=\"" + user + "\" password=\"" + password + "\";");
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (PartitionInfo p : consumer.partitionsFor(TOPIC, Duration.ofSeconds(30))) {
        partitions.add(new TopicPartition(TOPIC, p.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // read_committed: the end is the last stable offset, so no open transaction is waited for
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(30));
      Set<TopicPartition> pending = new HashSet<>(partitions);
      while (!pending.isEmpty()) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
          if (r.value() == null) {
            table.remove(new String(r.key(), java.nio.charset.StandardCharsets.UTF_8));  // a tombstone
          } else {
            apply(new String(r.key(), java.nio.charset.StandardCharsets.UTF_8), decode(r.value()));
          }
        }
        pending.removeIf(tp -> consumer.position(tp) >= end.get(tp));
      }
    }
  }

  ObjectNode json(Set<String> entities) {
    ObjectNode out = JSON.createObjectNode();
    table.forEach((key, row) -> {
      if (entities.isEmpty() || entities.contains(key.substring(0, key.lastIndexOf('|')))) {
        out.set(key, row);
      }
    });
    return out;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = "127.0.0.1:19092";
    String registry = "http://127.0.0.1:8083";
    String user = "sector-banking";
    String passwordFile = null;
    Set<String> entities = new HashSet<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--bootstrap" -> bootstrap = args[++i];
        case "--registry" -> registry = args[++i];
        case "--user" -> user = args[++i];
        case "--password-file" -> passwordFile = args[++i];
        case "--entity" -> entities.add(args[++i]);
        default -> {
          System.err.println("usage: java -jar credit-subscriber.jar [--bootstrap HOST:PORT] "
              + "[--user PRINCIPAL] --password-file FILE [--registry URL] [--entity ID]...\n\n"
              + "Reads credit.lists.current from the beginning as the sector system PRINCIPAL (default "
              + "sector-banking; its Kafka password in FILE) and prints the current lists (key "
              + "'<entity id>|<list kind>' -> listed, entries) as JSON; --entity keeps only those "
              + "entities in the output.");
          System.exit(args[i].equals("--help") ? 0 : 2);
        }
      }
    }
    if (passwordFile == null) {
      System.err.println("--password-file is required: the file holding the Kafka password of " + user);
      System.exit(2);
    }
    String password = Files.readString(Path.of(passwordFile)).strip();
    CurrentLists lists = new CurrentLists(registry);
    lists.readAll(bootstrap, user, password);
    System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(lists.json(entities)));
  }
}
