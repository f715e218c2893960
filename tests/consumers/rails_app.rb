# A minimal Rails 6.1 application with Action Mailbox (Debian's
# ruby-actionmailbox and ruby-railties), booted under WEBrick on loopback
# for the consumer tests (actionmailbox.test):
#
#   ruby rails_app.rb PORT_FILE STORE_DIR APP_DIR
#
# Every ingress of Action Mailbox is mounted; the ingress a request is for
# (ActionMailbox.ingress, one per application) is taken from its path, so
# one boot serves the relay, Mailgun, SendGrid and Postmark ingresses. The
# ingress password is "ingress-pass", the Mailgun signing key "mailgun-key".
# Inbound emails are stored as Action Mailbox stores them (SQLite, Active
# Storage on disk), routed at once (inline jobs) to a mailbox that writes
# what it got into STORE_DIR: N.raw (the stored source, read back from
# Active Storage) and N.json (Message-ID, subject, X-Original-To,
# attachments with their SHA-256).
#
# Limits: Rack refuses URL-encoded bodies over 4 MiB and buffers at most
# 16 MiB of multipart fields; a deployment that receives mail raises both
# past its largest message, as the test does in this process's environment
# (RACK_QUERY_PARSER_BYTESIZE_LIMIT, RACK_MULTIPART_BUFFERED_UPLOAD_BYTESIZE_LIMIT).
require "digest"
require "fileutils"
require "json"
require "logger"

PORT_FILE, STORE, ROOT = ARGV
FileUtils.mkdir_p(File.join(ROOT, "storage"))
ENV["RAILS_ENV"] = "production"
# Writers wait for each other (SQLite has one) rather than fail at once.
ENV["DATABASE_URL"] = "sqlite3:#{File.join(ROOT, "db.sqlite3")}?timeout=30000"
ENV["RAILS_INBOUND_EMAIL_PASSWORD"] = "ingress-pass"
ENV["MAILGUN_INGRESS_SIGNING_KEY"] = "mailgun-key"

require "rails"
require "active_record/railtie"
require "active_storage/engine"
require "active_job/railtie"
require "action_controller/railtie"
require "action_mailbox/engine"
require "rack/handler/webrick"

# The ingress named in the path: /rails/action_mailbox/INGRESS/...; and
# every answer, a line "STATUS PATH" in STORE_DIR/requests.log (Action
# Mailbox drops a second copy of a message silently: the log shows it).
class IngressFromPath
  def initialize(app)
    @app = app
    @lock = Mutex.new
  end

  def call(env)
    if (m = %r{\A/rails/action_mailbox/(relay|mailgun|sendgrid|postmark)/}.match(env["PATH_INFO"]))
      ActionMailbox.ingress = m[1].to_sym
    end
    status, headers, body = @app.call(env)
    @lock.synchronize { File.write(File.join(STORE, "requests.log"), "#{status} #{env["PATH_INFO"]}\n", mode: "a") }
    [status, headers, body]
  end
end

class ConsumerApp < Rails::Application
  config.root = ROOT
  # Loaded before serving: autoloading in concurrent requests races.
  config.eager_load = true
  config.logger = Logger.new($stderr, level: Logger::WARN)
  config.log_level = :warn
  config.secret_key_base = "consumer-test" * 8
  config.hosts.clear
  config.active_storage.service = :local
  config.active_storage.service_configurations = { "local" => { "service" => "Disk", "root" => File.join(ROOT, "storage") } }
  config.active_job.queue_adapter = :inline
  config.action_mailbox.ingress = :relay
  # Processed mail is kept (incineration would be a job 30 days ahead).
  config.action_mailbox.incinerate = false
  config.middleware.insert_before 0, IngressFromPath
end

ConsumerApp.initialize!

ActiveRecord::Migration.verbose = false
ActiveRecord::MigrationContext.new([ActiveStorage::Engine.root.join("db/migrate").to_s,
                                    ActionMailbox::Engine.root.join("db/migrate").to_s],
                                   ActiveRecord::SchemaMigration).migrate

class ApplicationMailbox < ActionMailbox::Base
  routing all: :store
end

class StoreMailbox < ActionMailbox::Base
  def process
    id = inbound_email.id
    File.binwrite(File.join(STORE, "#{id}.raw"), inbound_email.source)
    record = {
      message_id: "<#{mail.message_id}>",
      subject: mail.subject.to_s,
      original_to: mail.header.fields.select { |f| f.name == "X-Original-To" }.map { |f| f.value.to_s },
      attachments: mail.attachments.map { |a| d = a.decoded; [a.filename, d.bytesize, Digest::SHA256.hexdigest(d)] },
    }
    File.write(File.join(STORE, "#{id}.json.tmp"), JSON.generate(record))
    File.rename(File.join(STORE, "#{id}.json.tmp"), File.join(STORE, "#{id}.json"))
  end
end

Rack::Handler::WEBrick.run(ConsumerApp, Host: "127.0.0.1", Port: 0,
                           Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: []) do |server|
  File.write(PORT_FILE + ".tmp", server.listeners[0].addr[1].to_s)
  File.rename(PORT_FILE + ".tmp", PORT_FILE)
end
