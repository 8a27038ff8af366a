# ---- The classic problems as examples (issue 13) --------------------------
# Included by Makefile.am after its EXAMPLES list. Each program checks its own
# result; tests/check-examples.sh runs them all in make check.
EXAMPLES += \
	examples/config_reload \
	examples/connection_pool \
	examples/dining_philosophers \
	examples/lost_deposit \
	examples/producer_consumer_processes \
	examples/thread_pool \
	examples/word_count
EXTRA_DIST += examples/README
examples_config_reload_CPPFLAGS = $(examples_cppflags)
examples_config_reload_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_config_reload_LDADD = libsync.la $(PTHREAD_LIBS)
examples_connection_pool_CPPFLAGS = $(examples_cppflags)
examples_connection_pool_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_connection_pool_LDADD = libsync.la $(PTHREAD_LIBS)
examples_dining_philosophers_CPPFLAGS = $(examples_cppflags)
examples_dining_philosophers_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_dining_philosophers_LDADD = libsync.la $(PTHREAD_LIBS)
examples_lost_deposit_CPPFLAGS = $(examples_cppflags)
examples_lost_deposit_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_lost_deposit_LDADD = libsync.la $(PTHREAD_LIBS)
examples_producer_consumer_processes_CPPFLAGS = $(examples_cppflags)
examples_producer_consumer_processes_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_producer_consumer_processes_LDADD = libsync.la $(PTHREAD_LIBS)
examples_word_count_CPPFLAGS = $(examples_cppflags)
examples_word_count_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_word_count_LDADD = libsync.la $(PTHREAD_LIBS)
examples_thread_pool_CPPFLAGS = $(examples_cppflags)
examples_thread_pool_CFLAGS = $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
examples_thread_pool_LDADD = libsync.la $(PTHREAD_LIBS)
