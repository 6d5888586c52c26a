package eligibility.hapi;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.DaoRegistry;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.config.util.ResourceCountCacheUtil;
import ca.uhn.fhir.jpa.dao.FulltextSearchSvcImpl;
import ca.uhn.fhir.jpa.dao.IFulltextSearchSvc;
import ca.uhn.fhir.jpa.dao.search.HSearchSortHelperImpl;
import ca.uhn.fhir.jpa.dao.search.IHSearchSortHelper;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.DaoRegistryResourceSupportedSvc;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.search.IStaleSearchDeletingSvc;
import ca.uhn.fhir.jpa.search.StaleSearchDeletingSvcImpl;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.jpa.util.ResourceCountCache;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.rest.api.IResourceSupportedSvc;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Lazy;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

/**
 * The beans of a HAPI FHIR JPA R4 server, set the way the hapiproject/hapi:v8.4.0-2 image
 * (hapi-fhir-jpaserver-starter 8.4.0-2, its application.yaml and AppProperties defaults) sets
 * them where our service can tell the difference. Every setting says which default it reproduces.
 */
@Configuration
@EnableTransactionManagement
@Import({
	// The JPA server for R4: DAOs, search, transactions (the starter's FhirServerConfigR4).
	JpaR4Config.class,
	// Batch jobs (reindexing after a SearchParameter change); the starter's Application imports both.
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	// Subscriptions: matching, activation and delivery, as imported by the starter's Application.
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class,
	SubscriptionChannelConfig.class
})
public class ServerConfig {

	/** Reproduces the image's defaults for search, paging, ids and writes (FhirServerConfigCommon). */
	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings settings = new JpaStorageSettings();
		// reuse_cached_search_results_millis: 60000 (AppProperties default). An identical search
		// within 60 s is answered from the stored result unless the request says
		// Cache-Control: no-cache: the staleness our client guards against. Our compose file sets
		// 0 (no reuse); -Dhapi.reuse_cached_search_results_millis=0 does the same here.
		settings.setReuseCachedSearchResultsForMillis(
				Long.getLong("hapi.reuse_cached_search_results_millis", 60_000L));
		// retain_cached_searches_mins: 60 (AppProperties default): _getpages links stay valid an hour.
		settings.setExpireSearchResultsAfterMillis(60L * 60 * 1000);
		// search_prefetch_thresholds: 13,503,2003,-1 (the image's application.yaml): how many
		// results a search loads before the next page is asked for.
		settings.setSearchPreFetchThresholds(List.of(13, 503, 2003, -1));
		// max_page_size: unlimited (AppProperties default): _count=500 gets pages of 500.
		settings.setFetchSizeDefaultMaximum(Integer.MAX_VALUE);
		// client_id_strategy: ALPHANUMERIC (AppProperties default): PUT Patient/seed-eligible creates it.
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		// enforce_referential_integrity_on_write: true (AppProperties default): a reference to a
		// missing resource is refused, so seeds must be loaded in dependency order.
		settings.setEnforceReferentialIntegrityOnWrite(true);
		// allow_multiple_delete: false, delete_expunge_enabled: false, expunge_enabled: true
		// (AppProperties defaults).
		settings.setAllowMultipleDelete(false);
		settings.setDeleteExpungeEnabled(false);
		settings.setExpungeEnabled(true);
		// match_url_cache_enabled: false (AppProperties default): each conditional create/update
		// resolves its match URL against the database.
		settings.setMatchUrlCacheEnabled(false);
		// Batch jobs (a bulk export's steps) wait for the maintenance pass, once a minute, between
		// steps: an export of a few patients takes minutes. Off as in the image;
		// -Dhapi.job_fast_tracking=true (the test tier) runs the next step as soon as one ends.
		settings.setJobFastTrackingEnabled(Boolean.getBoolean("hapi.job_fast_tracking"));
		// Not settings but HAPI defaults we rely on, kept as they are:
		// - an update whose content is unchanged creates no new version;
		// - a conditional create that loses a race is refused with 409 (HAPI-0550) thanks to the
		//   unique HFJ_RES_SEARCH_URL row, instead of creating a duplicate (HAPI >= 6.6).
		return settings;
	}

	/**
	 * -Dhapi.maintenance_every_ms=N (the test tier only): a batch maintenance pass every N ms
	 * besides HAPI's own, once a minute. A bulk export starts at a maintenance pass, so without
	 * this each export of the tests waits up to a minute before its first step. Off by default.
	 */
	@Bean(destroyMethod = "stop")
	public QuickMaintenance quickMaintenance(IJobMaintenanceService maintenance) {
		return new QuickMaintenance(maintenance, Long.getLong("hapi.maintenance_every_ms", 0L));
	}

	/** The extra maintenance passes of the test tier (none when the period is 0). */
	public static final class QuickMaintenance {
		private final ScheduledExecutorService executor;

		QuickMaintenance(IJobMaintenanceService maintenance, long everyMs) {
			executor = Executors.newSingleThreadScheduledExecutor(task -> {
				Thread thread = new Thread(task, "quick-batch-maintenance");
				thread.setDaemon(true);
				return thread;
			});
			if (everyMs > 0) {
				executor.scheduleWithFixedDelay(() -> {
					try {
						maintenance.triggerMaintenancePass();
					} catch (RuntimeException e) {
						// The next pass tries again; HAPI's own pass still runs every minute.
					}
				}, everyMs, everyMs, TimeUnit.MILLISECONDS);
			}
		}

		public void stop() {
			executor.shutdownNow();
		}
	}

	/** subscription.resthook_enabled: true, as our docker-compose.yml sets it (the starter's default is false). */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		SubscriptionSettings settings = new SubscriptionSettings();
		settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
		return settings;
	}

	/** partitioning: absent (the starter's default): one partition. */
	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** spring.datasource: jdbc:h2:mem (the image's application.yaml), hikari.maximum-pool-size: 10. */
	@Bean(destroyMethod = "close")
	public BasicDataSource dataSource() {
		BasicDataSource dataSource = new BasicDataSource();
		dataSource.setDriverClassName("org.h2.Driver");
		dataSource.setUrl("jdbc:h2:mem:hapi;DB_CLOSE_DELAY=-1");
		dataSource.setUsername("sa");
		dataSource.setPassword("");
		dataSource.setMaxTotal(10);
		return dataSource;
	}

	/** The starter's StarterJpaConfig.entityManagerFactory with hibernate.dialect HapiFhirH2Dialect. */
	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		Properties jpa = new Properties();
		// The image's application.yaml: hibernate.dialect HapiFhirH2Dialect, search (Lucene) off.
		jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		jpa.put("hibernate.search.enabled", "false");
		// Spring Boot creates the schema of an embedded database (ddl-auto create-drop); same here.
		jpa.put("hibernate.hbm2ddl.auto", "update");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.show_sql", "false");
		factory.setJpaProperties(jpa);
		return factory;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}

	/** default_page_size: 20, max_page_size: unlimited (AppProperties defaults; StarterJpaConfig). */
	@Bean
	public DatabaseBackedPagingProvider databaseBackedPagingProvider() {
		DatabaseBackedPagingProvider paging = new DatabaseBackedPagingProvider();
		paging.setDefaultPageSize(20);
		paging.setMaximumPageSize(Integer.MAX_VALUE);
		return paging;
	}

	// Beans the JPA server needs that the starter's StarterJpaConfig declares.

	@Bean
	public IFulltextSearchSvc fullTextSearchSvc() {
		return new FulltextSearchSvcImpl();
	}

	@Bean
	public IHSearchSortHelper hSearchSortHelper(ISearchParamRegistry searchParamRegistry) {
		return new HSearchSortHelperImpl(searchParamRegistry);
	}

	/** Deletes expired cached searches (retain_cached_searches_mins above). */
	@Bean
	public IStaleSearchDeletingSvc staleSearchDeletingSvc() {
		return new StaleSearchDeletingSvcImpl();
	}

	@Bean
	public IResourceSupportedSvc resourceSupportedSvc(DaoRegistry daoRegistry) {
		return new DaoRegistryResourceSupportedSvc(daoRegistry);
	}

	@Bean(name = "myResourceCountsCache")
	public ResourceCountCache resourceCountsCache(IFhirSystemDao<?, ?> systemDao) {
		return ResourceCountCacheUtil.newResourceCountCache(systemDao);
	}

	@Lazy
	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}

	/** No e-mail subscriptions (the starter's placeholder sender when subscription.email is absent). */
	@Bean
	public IEmailSender emailSender() {
		return details -> {};
	}

	/** The REST server at /fhir, as StarterJpaConfig.restfulServer builds it for R4. */
	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviderFactory,
			JpaSystemProvider<?, ?> systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			BulkDataExportProvider bulkDataExportProvider) {
		FhirContext fhirContext = systemDao.getContext();
		// narrative_enabled: false (the image's application.yaml): no generated narratives.
		fhirContext.setNarrativeGenerator(new NullNarrativeGenerator());
		RestfulServer server = new RestfulServer(fhirContext);
		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(systemProvider);
		// bulk_export_enabled: true, as our docker-compose.yml sets it (the starter's default is
		// false): $export at system, Group and Patient level (`screen --all --bulk`). Files are
		// Binary resources in the database (DatabaseBinaryContentStorageSvcImpl below).
		server.registerProvider(bulkDataExportProvider);
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("HAPI FHIR R4 Server");
		server.setServerConformanceProvider(capabilities);
		// default_pretty_print: true, default_encoding: JSON (AppProperties defaults).
		server.setDefaultPrettyPrint(true);
		server.setDefaultResponseEncoding(ca.uhn.fhir.rest.api.EncodingEnum.JSON);
		// Searches are paged through the database: next links are _getpages=<search id> URLs.
		server.setPagingProvider(pagingProvider);
		return server;
	}
}
